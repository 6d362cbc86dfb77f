"""The shared-trip page (/t/…) in Chromium at phone size, in English and French: it follows a
car a driver moves over the real protocol, reconnects by itself after the service cuts its
stream, says so when the trip ends, and is gone 30 minutes later."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from playwright.async_api import expect

from tests.builders import (
    Account,
    SocketClient,
    make_driver,
    make_rider,
    north,
    offer_to,
    place_driver,
    request_trip,
    socket,
)
from tests.polling import until
from tests.web.conftest import PHONE, Visit, Web

TIMEOUT_MS = 20_000


async def _drive(driver_socket: SocketClient, web: Web, metres: list[float]) -> None:
    """The driver's app reports positions at a believable speed; the ingest flushes them."""
    for step in metres:
        await driver_socket.send({"type": "location", **north(step, east_m=step / 4)})
        await asyncio.sleep(0.5)
    await web.app.state.locations.flush()


async def _page_holds(v: Visit, expression: str, wanted: Callable[[Any], bool]) -> None:
    """Waits for a value of the page (the page's policy allows no script from a string, so
    Playwright's `wait_for_function` cannot run there; `evaluate` is the browser's own)."""

    async def check() -> bool:
        return wanted(await v.page.evaluate(expression))

    await until(check, timeout_s=TIMEOUT_MS / 1000, interval_s=0.1, what=expression)


async def _car_at(v: Visit, metres: float) -> None:
    lat = north(metres, east_m=metres / 4)["lat"]
    await _page_holds(
        v,
        "document.body.dataset.carLat",
        lambda value: value is not None and abs(float(value) - lat) < 1e-6,
    )


async def test_the_shared_page_follows_a_moving_car_in_both_languages_and_through_a_cut(
    web: Web, visit: Callable[..., Any]
) -> None:
    admin = {"Authorization": f"Bearer {web.admin_token}"}
    rider: Account = await make_rider(web.http, "Béatrice Lavoie")
    driver: Account = await make_driver(web.http, admin, name="Karim Haddad")
    trip = await request_trip(web.http, rider)
    await place_driver(web.app, driver.id, north(900, east_m=225))
    offer_id = await offer_to(web.app, driver)
    accepted = await web.http.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
    assert accepted.status_code == 200, accepted.text
    made = await web.http.post(f"/v1/trips/{trip['id']}/share", headers=rider.headers)
    assert made.status_code == 201, made.text
    path = "/t/" + made.json()["token"]

    english: Visit = await visit(language="en", viewport=PHONE)
    await english.goto(path)
    page = english.page
    assert await page.get_attribute("html", "lang") == "en"
    await expect(page.locator("#share-state")).to_have_text(
        "The driver is on the way to the pickup"
    )
    await expect(page.locator("#share-driver")).to_have_text("Karim")
    await expect(page.locator("#share-plate")).to_have_text("FXK 123")
    await expect(page.locator("#share-eta")).to_contain_text("At the pickup in about")
    await expect(page.locator("#share-live")).to_have_text("Live", timeout=TIMEOUT_MS)
    # Nothing of the rider, and no account id, anywhere on the page.
    html = await page.content()
    for secret in ("Béatrice", "Lavoie", str(rider.id), str(driver.id), "Haddad"):
        assert secret not in html

    french: Visit = await visit(language="fr", viewport=PHONE)
    await french.goto(path)
    assert await french.page.get_attribute("html", "lang") == "fr"
    await expect(french.page.locator("#share-state")).to_have_text(
        "La personne au volant est en route vers le point de départ"
    )
    await expect(french.page.locator("#share-live")).to_have_text("En direct", timeout=TIMEOUT_MS)

    async with socket(web.base_url, "/v1/ws/driver", driver.token) as driver_socket:
        await _drive(driver_socket, web, [880, 860, 840, 820])
        await _car_at(english, 820)
        await _car_at(french, 820)
        await english.axe("/t (en)")
        await english.shot("share-phone-en", full_page=False)
        await french.axe("/t (fr)")
        await french.shot("share-phone-fr", full_page=False)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the shared page scrolls sideways ({width}px)"

        # The service cuts every stream; the pages reconnect by themselves and keep following.
        await web.app.state.share_feed.cut()
        for v in (english, french):
            await _page_holds(
                v, "Number(document.body.dataset.shareOpens)", lambda value: value >= 2
            )
        await _drive(driver_socket, web, [800, 780, 760])
        await _car_at(english, 760)
        await _car_at(french, 760)

        # The switch: the same page in the other language.
        await page.get_by_role("link", name="Français").click()
        await expect(page.locator("#share-state")).to_have_text(
            "La personne au volant est en route vers le point de départ"
        )
        await page.get_by_role("link", name="English").click()
        await expect(page.locator("#share-state")).to_have_text(
            "The driver is on the way to the pickup"
        )
        await expect(page.locator("#share-live")).to_have_text("Live", timeout=TIMEOUT_MS)

        # The trip ends while the pages are open: they say so and stop following.
        cancelled = await web.http.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)
        assert cancelled.status_code == 200, cancelled.text
    await expect(page.locator("body")).to_have_attribute(
        "data-share-stream", "ended", timeout=TIMEOUT_MS
    )
    await expect(page.locator("#share-state")).to_have_text("The trip was cancelled")
    await expect(page.locator("#share-live")).to_have_text(
        "Following has stopped: the trip is over."
    )
    await expect(french.page.locator("#share-live")).to_have_text(
        "Le suivi s'est arrêté : le trajet est terminé.", timeout=TIMEOUT_MS
    )
    await english.shot("share-ended-en", full_page=False)

    # Thirty minutes after the end, the link is gone: the page is the 404 in the language.
    web.clock.offset_s = 31 * 60
    try:
        later: Visit = await visit(language="fr", viewport=PHONE)
        await later.goto(path, expect=404)
        await expect(later.page.locator("h1")).to_be_visible()
    finally:
        web.clock.offset_s = 0
