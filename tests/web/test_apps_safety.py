"""The apps' safety features in Chromium at phone size, against the real service (docs/apps.md,
"Safety"): the rider sees who is coming (the approved photo fetched with the rider's key, the
car, the plate) and the PIN, shares the trip (the link's page opens, and the rider is told),
raises a drill and a real SOS that a person acknowledges over the API; the driver app is told
plainly about a wrong PIN and the lock after five, and starts once the rider vouches for the car.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from playwright.async_api import expect

from tests.builders import (
    DOWNTOWN,
    Account,
    assigned_trip,
    jpeg_photo,
    make_driver,
    make_rider,
)
from tests.web.conftest import PHONE, Visit, Web

TIMEOUT_MS = 15_000


def phone(position: dict[str, float]) -> dict[str, Any]:
    return {
        "viewport": PHONE,
        "has_touch": True,
        "is_mobile": True,
        "geolocation": {"latitude": position["lat"], "longitude": position["lon"]},
        "permissions": ["geolocation"],
    }


async def _signed_in(v: Visit, app: str, token: str) -> None:
    await v.goto(f"/{app}")
    await v.page.evaluate(
        "([app, token]) => localStorage.setItem(`coop.${app}.token`, token)", [app, token]
    )
    await v.page.reload()


async def _driver_with_photo(web: Web) -> Account:
    admin = {"Authorization": f"Bearer {web.admin_token}"}
    driver = await make_driver(web.http, admin, name="Amira Haddad")
    uploaded = await web.http.put(
        "/v1/drivers/me/photo",
        content=jpeg_photo(),
        headers={**driver.headers, "Content-Type": "image/jpeg"},
    )
    assert uploaded.status_code == 200, uploaded.text
    approved = await web.http.post(f"/v1/drivers/{driver.id}/photo/approve", json={}, headers=admin)
    assert approved.status_code == 200, approved.text
    return driver


async def _alerts(web: Web) -> list[dict[str, Any]]:
    admin = {"Authorization": f"Bearer {web.admin_token}"}
    answer = await web.http.get("/v1/safety/alerts?status=all", headers=admin)
    assert answer.status_code == 200, answer.text
    alerts: list[dict[str, Any]] = answer.json()
    return alerts


async def test_the_rider_and_driver_apps_use_the_safety_features(
    web: Web, visit: Callable[..., Any]
) -> None:
    admin = {"Authorization": f"Bearer {web.admin_token}"}
    driver = await _driver_with_photo(web)
    rider = await make_rider(web.http, "Lucie Gagnon")
    policy = await web.http.patch(
        "/v1/riders/me", json={"safety": {"pin": "always"}}, headers=rider.headers
    )
    assert policy.status_code == 200, policy.text
    v: Visit = await visit(language="en", **phone(DOWNTOWN))
    page = v.page
    await _signed_in(v, "ride", rider.token)
    await expect(page.locator("#plan-title")).to_be_visible(timeout=TIMEOUT_MS)
    # Without a trip, the emergency button is there, and sharing is not.
    await expect(page.get_by_role("button", name="Emergency (SOS)")).to_be_visible()
    await expect(page.locator("#share-trip")).to_be_hidden()

    trip = await assigned_trip(web.app, web.http, rider, driver)
    await expect(page.locator("#trip-title")).to_have_text(
        "Amira Haddad is on the way", timeout=TIMEOUT_MS
    )
    seen = (await web.http.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    # Who is coming: the photo came with the rider's key, through a blob URL; the car, the plate.
    photo = page.locator("#driver-photo")
    await expect(photo).to_be_visible()
    await expect(photo).to_have_attribute("src", re.compile(r"^blob:"))
    assert await photo.evaluate("(img) => img.decode().then(() => img.naturalWidth)") > 0
    await expect(page.locator("#car-text")).to_have_text("Gris Toyota Prius")
    await expect(page.locator("#plate-text")).to_have_text("FXK 123")
    # The PIN, large.
    await expect(page.locator("#trip-pin")).to_contain_text("Give this PIN to your driver")
    await expect(page.locator("#pin-digits")).to_have_text(seen["pin"])
    await v.axe("/ride, who is coming and the PIN (en)")
    await v.shot("ride-safety-assigned-en", full_page=False)

    # Share my trip: the link is shown (no share sheet in this browser), its page opens, and the
    # rider is told someone opened it.
    await page.get_by_role("button", name="Share my trip").click()
    link = page.locator("#share-link")
    await expect(link).to_have_attribute("href", re.compile(r"/t/[A-Za-z0-9_-]{20,}$"))
    url = await link.get_attribute("href")
    assert url is not None
    other: Visit = await visit(language="en", **phone(DOWNTOWN))
    await other.goto("/t/" + url.rsplit("/t/", 1)[1])
    await expect(page.locator("#share-status")).to_contain_text(
        "Someone opened your link", timeout=TIMEOUT_MS
    )
    await v.shot("ride-safety-shared-en")

    # A drill: it works, and nobody is alerted.
    await page.get_by_role("button", name="Emergency (SOS)").click()
    await expect(page.get_by_role("link", name="Call 911")).to_have_attribute("href", "tel:911")
    await v.axe("/ride, the SOS confirmation (en)")
    await v.shot("ride-safety-sos-confirm-en", full_page=False)
    await page.get_by_role("button", name="Try it (a drill: nobody is alerted)").click()
    await expect(page.locator("#sos-status")).to_contain_text("Nobody was alerted")
    assert await _alerts(web) == []

    # A real alert: raised, the phone's position follows, and a person acknowledges it.
    await page.get_by_role("button", name="Emergency (SOS)").click()
    await page.get_by_role("button", name="Alert the co-op now").click()
    await expect(page.locator("#sos-status")).to_contain_text("Alert sent")
    [alert] = await _alerts(web)
    assert alert["trip_id"] == trip["id"] and alert["drill"] is False
    for _ in range(40):
        alert = (await web.http.get(f"/v1/safety/alerts/{alert['id']}", headers=admin)).json()
        if len([p for p in alert["positions"] if p["source"] == "raiser"]) >= 2:
            break
        await asyncio.sleep(0.25)
    raiser = [p for p in alert["positions"] if p["source"] == "raiser"]
    assert len(raiser) >= 2, alert["positions"]  # at the raise, then the frames that follow
    assert abs(raiser[0]["lat"] - DOWNTOWN["lat"]) < 1e-4
    acked = await web.http.post(f"/v1/safety/alerts/{alert['id']}/acknowledge", headers=admin)
    assert acked.status_code == 200, acked.text
    await expect(page.locator("#sos-status")).to_contain_text(
        "A person at the co-op has your alert", timeout=TIMEOUT_MS
    )
    await v.shot("ride-safety-sos-acknowledged-en", full_page=False)

    # At the pickup: the driver's app says plainly what a wrong PIN and the lock mean.
    arrived = await web.http.post(f"/v1/trips/{trip['id']}/arrived", headers=driver.headers)
    assert arrived.status_code == 200, arrived.text
    d: Visit = await visit(language="fr", **phone(DOWNTOWN))
    dpage = d.page
    await _signed_in(d, "drive", driver.token)
    await expect(dpage.locator("#trip-title")).to_have_text(
        "En attente de la personne passagère", timeout=TIMEOUT_MS
    )
    wrong = f"{(int(seen['pin']) + 1) % 10_000:04d}"
    await dpage.get_by_label("Le NIP de la personne passagère").fill(wrong)
    await dpage.locator("#step").click()
    await expect(dpage.locator("#trip-error")).to_contain_text("(4 ")
    for _ in range(4):
        await web.http.post(
            f"/v1/trips/{trip['id']}/start", json={"pin": wrong}, headers=driver.headers
        )
    await dpage.locator("#step").click()
    await expect(dpage.locator("#trip-error")).to_contain_text("Cinq NIP erronés")
    await d.axe("/drive, NIP refusé (fr)")
    await d.shot("drive-safety-pin-locked-fr", full_page=False)
    d.errors[:] = [e for e in d.errors if "status of 409" not in e and "status of 429" not in e]

    # The rider vouches for the car in their app; the driver starts without the PIN.
    await page.get_by_role("button", name="This is my car: start without the PIN").click()
    await expect(page.locator("#trip-error")).to_contain_text("without the PIN")
    await expect(dpage.locator("#pin-field")).to_be_hidden(timeout=TIMEOUT_MS)
    await dpage.locator("#step").click()
    await expect(dpage.locator("#trip-title")).to_have_text("En route vers la destination")
    # Both apps offer sharing and the alert during the ride.
    await expect(dpage.get_by_role("button", name="Partager ma course")).to_be_visible()
    await expect(dpage.get_by_role("button", name="Urgence (SOS)")).to_be_visible()
    await dpage.get_by_role("button", name="Partager ma course").click()
    await expect(dpage.locator("#share-link")).to_have_attribute(
        "href", re.compile(r"/t/[A-Za-z0-9_-]{20,}$")
    )
    await expect(dpage.locator("#share-status")).to_contain_text("lien")
    await d.shot("drive-safety-ride-fr", full_page=False)
    await expect(page.locator("#trip-pin")).to_be_hidden()
    resolved = await web.http.post(
        f"/v1/safety/alerts/{alert['id']}/resolve", json={"outcome": "real"}, headers=admin
    )
    assert resolved.status_code == 200, resolved.text
    await expect(page.locator("#sos-status")).to_contain_text("closed", timeout=TIMEOUT_MS)

    # In French, a rider without a trip tries the alert. An alert id that is not theirs, planted
    # in the page's storage (a guess), shows nothing and is forgotten.
    stranger = await make_rider(web.http, "Inès Inconnue")
    f: Visit = await visit(language="fr", **phone(DOWNTOWN))
    await f.goto("/ride")
    await f.page.evaluate(
        """([token, id]) => {
             localStorage.setItem('coop.ride.token', token);
             localStorage.setItem('coop.ride.sos', id);
           }""",
        [stranger.token, alert["id"]],
    )
    await f.page.reload()
    await expect(f.page.locator("#plan-title")).to_be_visible(timeout=TIMEOUT_MS)
    await f.page.wait_for_function("() => localStorage.getItem('coop.ride.sos') === null")
    await expect(f.page.locator("#sos-status")).to_be_empty()
    f.errors[:] = [e for e in f.errors if "status of 404" not in e]
    await f.page.get_by_role("button", name="Urgence (SOS)").click()
    await expect(f.page.get_by_role("link", name="Appeler le 911")).to_have_attribute(
        "href", "tel:911"
    )
    await f.page.get_by_role("button", name="L'essayer").click()
    await expect(f.page.locator("#sos-status")).to_contain_text("Personne n'a été alerté")
    await f.axe("/ride, exercice d'alerte (fr)")
    await f.shot("ride-safety-drill-fr", full_page=False)
    assert [a["id"] for a in await _alerts(web)] == [alert["id"]]  # the drill reached no queue

    # The rider's auto-share policy: once a driver accepts, the app shows the link the service
    # made, for the rider to send.
    shared = await web.http.patch(
        "/v1/riders/me", json={"safety": {"auto_share": "always"}}, headers=stranger.headers
    )
    assert shared.status_code == 200, shared.text
    second = await make_driver(web.http, admin, name="Mei Chen")
    await assigned_trip(web.app, web.http, stranger, second)
    await expect(f.page.locator("#share-status")).to_contain_text(
        "partagée automatiquement", timeout=TIMEOUT_MS
    )
    await expect(f.page.locator("#share-link")).to_have_attribute(
        "href", re.compile(r"/t/[A-Za-z0-9_-]{20,}$")
    )
