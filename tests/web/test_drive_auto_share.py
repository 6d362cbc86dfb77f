"""The driver app shows the link a driver's own auto-share policy made at assignment (docs/apps.md,
"Safety"), as the rider app does the rider's: in Chromium at phone size, in both languages."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from tests.builders import DOWNTOWN, make_driver, make_rider, offer_to, place_driver, request_trip
from tests.web.conftest import PHONE, Visit, Web

TIMEOUT_MS = 15_000
SAID = {
    "en": "Your trip is shared automatically",
    "fr": "partagée automatiquement",
}
OPENED = {"en": "Someone opened your link", "fr": "Quelqu'un a ouvert votre lien"}


@pytest.mark.parametrize("language", ["en", "fr"])
async def test_the_driver_app_shows_the_link_the_drivers_policy_made(
    web: Web, visit: Callable[..., Any], language: str
) -> None:
    admin = {"Authorization": f"Bearer {web.admin_token}"}
    driver = await make_driver(web.http, admin, name="Amira Haddad")
    chose = await web.http.patch(
        "/v1/drivers/me/safety",
        json={"auto_share": "always", "contacts": [{"name": "Karim", "phone": "514 555 0142"}]},
        headers=driver.headers,
    )
    assert chose.status_code == 200, chose.text
    rider = await make_rider(web.http, "Lucie Gagnon")
    d: Visit = await visit(
        language=language,
        viewport=PHONE,
        has_touch=True,
        is_mobile=True,
        geolocation={"latitude": DOWNTOWN["lat"], "longitude": DOWNTOWN["lon"]},
        permissions=["geolocation"],
    )
    await d.goto("/drive")
    await d.page.evaluate("token => localStorage.setItem('coop.drive.token', token)", driver.token)
    await d.page.reload()
    # The view shows with "connecting" said; the line empties once the socket is open.
    await expect(d.page.locator("#v-drive")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(d.page.locator("#connection")).to_be_empty(timeout=TIMEOUT_MS)

    # The offer reaches the app; the driver takes it there.
    await request_trip(web.http, rider)
    await place_driver(web.app, driver.id, DOWNTOWN)
    await offer_to(web.app, driver)
    await d.page.locator("#accept").click()
    await expect(d.page.locator("#share-status")).to_contain_text(
        SAID[language], timeout=TIMEOUT_MS
    )
    link = d.page.locator("#share-link")
    await expect(link).to_have_attribute("href", re.compile(r"/t/[A-Za-z0-9_-]{20,}$"))
    await d.page.locator("#share-box").scroll_into_view_if_needed()
    await d.axe(f"/drive, auto-shared trip ({language})")
    await d.shot(f"drive-safety-auto-shared-{language}", full_page=False)
    # The link opens the trip's page for whoever the driver sends it to.
    href = await link.get_attribute("href")
    assert href is not None
    seen = await web.http.get("/v1/shared/" + href.rsplit("/", 1)[1])
    assert seen.status_code == 200 and seen.json()["status"] == "assigned"
    # ... and the driver is told it was opened, as for a link made by hand.
    await expect(d.page.locator("#share-status")).to_contain_text(
        OPENED[language], timeout=TIMEOUT_MS
    )
