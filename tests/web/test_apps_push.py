"""The apps' "Notify me" switch and their service worker's pushes in Chromium (docs/push.md,
docs/apps.md), at phone size.

Headless Chromium has no push service, so `pushManager.subscribe` cannot work here: one test
turns the switch on as Chromium is and reads the plain refusal (nothing registered). The others
stand in a subscription of the loopback push service (tests/push/push_service.py) for the
browser's: the page registers it over the real API, the service pushes to it for real (VAPID
checked, payload decrypted), and the decrypted payload is delivered to the app's service worker
through the DevTools protocol (`ServiceWorker.deliverPushMessage`), as a phone's push service
would hand it over. The notifications are read back with `registration.getNotifications()`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest_asyncio
from httpx import AsyncClient
from playwright.async_api import CDPSession, Page, async_playwright, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from coop.settings import Settings
from dispatch.trips.models import Offer
from server.app import create_app
from tests.builders import (
    DOWNTOWN,
    Account,
    live_server,
    make_driver,
    make_rider,
    offer_to,
    place_driver,
    request_trip,
)
from tests.push.push_service import Phone, PushService, push_service
from tests.web.conftest import PHONE, Clock, Visit, Web, _empty_everything, chromium_path

TIMEOUT_MS = 15_000


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def web(base_settings: Settings, engine: AsyncEngine) -> AsyncIterator[Web]:
    """The service with the loopback push service's endpoints allowed (refused in production)."""
    settings = base_settings.model_copy(update={"push_allow_loopback": True})
    await _empty_everything(settings, engine)
    app = create_app(settings)
    app.state.clock = Clock()
    try:
        async with (
            live_server(app) as base_url,
            AsyncClient(base_url=base_url, timeout=30) as http,
            async_playwright() as playwright,
        ):
            browser = await playwright.chromium.launch(
                executable_path=chromium_path(),
                args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
            )
            try:
                yield Web(
                    app, base_url, http, browser, app.state.clock, admin_token=settings.admin_token
                )
            finally:
                await browser.close()
    finally:
        await _empty_everything(settings, engine)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pushes(web: Web) -> AsyncIterator[PushService]:
    async with push_service(web.app.state.vapid.public_key) as service:
        yield service


def _subscription_of(phone: Phone) -> str:
    """An init script giving the page the loopback push service's subscription where Chromium
    has none: what `subscribe` answers on a phone, with the phone's keys."""
    body = json.dumps(phone.device())
    return f"""(() => {{
      const body = {body};
      // The browser keeps a subscription across reloads: so does this one.
      const KEPT = "test.push.subscribed";
      const make = () => ({{
        endpoint: body.endpoint,
        toJSON: () => ({{ endpoint: body.endpoint, expirationTime: null, keys: body.keys }}),
        unsubscribe: async () => {{ localStorage.removeItem(KEPT); return true; }},
      }});
      PushManager.prototype.subscribe = async function (options) {{
        if (!options || options.userVisibleOnly !== true || !options.applicationServerKey) {{
          throw new DOMException("bad options", "NotAllowedError");
        }}
        window.__pushKeyBytes = options.applicationServerKey.length;
        localStorage.setItem(KEPT, "1");
        return make();
      }};
      PushManager.prototype.getSubscription = async function () {{
        return localStorage.getItem(KEPT) ? make() : null;
      }};
    }})()"""


async def _open_app(visit: Callable[..., Any], path: str, token: str, language: str) -> Visit:
    """The app signed in with `token`, notifications allowed, its worker active."""
    app: Visit = await visit(language=language, viewport=PHONE, permissions=["notifications"])
    await app.goto("/static/favicon.svg")
    await app.page.evaluate(f"localStorage.setItem('coop.{path}.token', {json.dumps(token)})")
    await app.goto(f"/{path}")
    await app.page.evaluate(
        "async (scope) => { await navigator.serviceWorker.register(scope + '-sw.js', {scope}); "
        "await navigator.serviceWorker.ready; }",
        f"/{path}",
    )
    await expect(app.page.locator("#push-switch")).to_be_visible(timeout=TIMEOUT_MS)
    return app


async def _devices(web: Web, token: str) -> list[dict[str, Any]]:
    response = await web.http.get("/v1/devices", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    devices: list[dict[str, Any]] = response.json()
    return devices


async def _deliver(cdp: CDPSession, web: Web, registration_id: str, payload: Any) -> None:
    await cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": web.base_url, "registrationId": registration_id, "data": json.dumps(payload)},
    )


async def _registration_id(page: Page, scope: str) -> tuple[CDPSession, str]:
    """The DevTools session and the id of the worker registration of `scope`."""
    cdp = await page.context.new_cdp_session(page)
    found: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def seen(event: dict[str, Any]) -> None:
        for registration in event["registrations"]:
            if registration["scopeURL"].endswith(scope) and not found.done():
                found.set_result(registration["registrationId"])

    cdp.on("ServiceWorker.workerRegistrationUpdated", seen)
    await cdp.send("ServiceWorker.enable")
    return cdp, await asyncio.wait_for(found, TIMEOUT_MS / 1000)


async def _notifications(page: Page, scope: str, count: int) -> list[dict[str, Any]]:
    """The worker's notifications shown now, once there are `count`."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        shown: list[dict[str, Any]] = await page.evaluate(
            """async (scope) => {
                 const registration = await navigator.serviceWorker.getRegistration(scope);
                 return (await registration.getNotifications()).map((n) => ({
                   title: n.title, body: n.body, tag: n.tag, lang: n.lang,
                   requireInteraction: n.requireInteraction, data: n.data }));
               }""",
            scope,
        )
        if len(shown) == count or time.monotonic() > deadline:
            assert len(shown) == count, shown
            return shown
        await asyncio.sleep(0.1)


async def test_without_a_push_service_the_switch_says_so_and_registers_nothing(
    web: Web, visit: Callable[..., Any]
) -> None:
    admin = {"Authorization": f"Bearer {web.admin_token}"}
    driver = await make_driver(web.http, admin, name="Headless Henri")
    app = await _open_app(visit, "drive", driver.token, "en")
    toggle = app.page.locator("#push-switch")
    await expect(toggle).not_to_be_checked()  # off until the person turns it on
    await toggle.click()
    status = app.page.locator("#push-status")
    await expect(status).to_contain_text("no push service", timeout=TIMEOUT_MS)
    await expect(toggle).not_to_be_checked()
    await expect(toggle).to_be_enabled()
    assert await _devices(web, driver.token) == []
    await app.shot("drive-push-unavailable-en")
    await app.axe("/drive without a push service")
    # Chromium's own console line for a refused subscription in a profile without push (what a
    # page can do about it is what the switch did: say so).
    app.errors[:] = [e for e in app.errors if "Push API" not in e]

    # Refused by the person (the browser's own prompt): the switch says where to allow it.
    rider = await make_rider(web.http, "Refusing Rita")
    refused: Visit = await visit(language="fr", viewport=PHONE)
    await refused.goto("/static/favicon.svg")
    await refused.page.evaluate(
        f"localStorage.setItem('coop.ride.token', {json.dumps(rider.token)})"
    )
    # The person answers the browser's prompt with "Block".
    await refused.context.add_init_script("Notification.requestPermission = async () => 'denied'")
    await refused.goto("/ride")
    ride_toggle = refused.page.locator("#push-switch")
    await expect(ride_toggle).to_be_visible(timeout=TIMEOUT_MS)
    await ride_toggle.click()  # turns itself back off at once: `check` would wait for it on
    await expect(refused.page.locator("#push-status")).to_contain_text(
        "bloquées", timeout=TIMEOUT_MS
    )
    await expect(ride_toggle).not_to_be_checked()
    assert await _devices(web, rider.token) == []


async def test_a_driver_turns_it_on_an_offer_is_shown_and_opening_it_sends_the_receipt(
    web: Web, visit: Callable[..., Any], pushes: PushService
) -> None:
    admin = {"Authorization": f"Bearer {web.admin_token}"}
    driver = await make_driver(web.http, admin, name="Pushed Paulette")
    phone = pushes.subscribe()
    app: Visit = await visit(language="en", viewport=PHONE, permissions=["notifications"])
    await app.context.add_init_script(_subscription_of(phone))
    await app.goto("/static/favicon.svg")
    await app.page.evaluate(f"localStorage.setItem('coop.drive.token', {json.dumps(driver.token)})")
    await app.goto("/drive")
    toggle = app.page.locator("#push-switch")
    await toggle.check()
    await expect(app.page.locator("#push-status")).to_have_text(
        "Notifications are on for this phone.", timeout=TIMEOUT_MS
    )
    await expect(toggle).to_be_checked()
    # The service's VAPID key, decoded: an uncompressed P-256 point.
    assert await app.page.evaluate("window.__pushKeyBytes") == 65
    devices = await _devices(web, driver.token)
    assert [(d["platform"], d["language"], d["current_token"]) for d in devices] == [
        ("web", "en", True)
    ]
    await app.shot("drive-push-on-en")
    await app.axe("/drive with notifications on")
    # A reload keeps it on (the subscription and the device are there).
    await app.page.reload()
    await expect(toggle).to_be_checked(timeout=TIMEOUT_MS)

    # The app goes to the background: no socket, so the offer goes by push.
    await app.goto("/static/favicon.svg")
    cdp, registration_id = await _registration_id(app.page, "/drive")
    rider = await make_rider(web.http, "Offered Olive")
    await request_trip(web.http, rider)
    await place_driver(web.app, driver.id, DOWNTOWN)
    offer_id = await offer_to(web.app, driver)
    pushed = await phone.next(timeout_s=10)
    assert pushed.payload["kind"] == "offer" and pushed.payload["offer_id"] == str(offer_id)
    handed_at = time.monotonic()
    await _deliver(cdp, web, registration_id, pushed.payload)
    [shown] = await _notifications(app.page, "/drive", 1)
    print(f"push handed to the worker to notification shown: {time.monotonic() - handed_at:.3f} s")
    assert shown["title"] == "New trip offer"
    assert shown["tag"] == "offer" and shown["requireInteraction"] is True
    assert "Pickup about" in shown["body"] and "Fare estimate: $" in shown["body"], shown
    assert shown["lang"] == "en"

    # A newer offer replaces the older one on the screen.
    newer = dict(pushed.payload, offer_id=str(uuid.uuid4()), fare_estimate="99.50")
    await _deliver(cdp, web, registration_id, newer)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        [shown] = await _notifications(app.page, "/drive", 1)
        if "99.50" in shown["body"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert "$99.50" in shown["body"], shown

    # A payload it cannot read still shows something (every push must be visible).
    await _deliver(cdp, web, registration_id, "not json {")
    await _notifications(app.page, "/drive", 2)

    # Opening the real offer's notification: the worker sends the receipt with the key it
    # was left (never in a URL), and the offer counts as delivered.
    worker = next(w for w in app.context.service_workers if w.url.endswith("/drive-sw.js"))
    opened = await worker.evaluate("(data) => openFrom(data)", {**pushed.payload, "url": "/drive"})
    assert opened["receipt"]["status"] == "pending", opened
    async with web.app.state.sessionmaker() as session:
        offer = await session.get(Offer, offer_id)
        assert offer is not None and offer.delivered_at is not None
    # A made-up offer id is refused by the service and changes nothing.
    stranger = await worker.evaluate(
        "(data) => openFrom(data)", {"kind": "offer", "offer_id": str(uuid.uuid4())}
    )
    assert stranger["receipt"] == {"status": None, "problem": 404}

    # Opened once the offer is gone (declined elsewhere): the open app is told, and says so.
    await app.goto("/drive")
    await expect(toggle).to_be_checked(timeout=TIMEOUT_MS)
    declined = await web.http.post(f"/v1/offers/{offer_id}/decline", headers=driver.headers)
    assert declined.status_code == 200, declined.text
    gone = await worker.evaluate("(data) => openFrom(data)", {**pushed.payload, "url": "/drive"})
    assert gone["receipt"]["status"] == "declined", gone
    await expect(app.page.locator("#push-status")).to_have_text(
        "That offer is no longer open.", timeout=TIMEOUT_MS
    )

    # Off: unsubscribed, the device removed, the worker's key forgotten.
    await toggle.uncheck()
    await expect(app.page.locator("#push-status")).to_have_text(
        "Notifications are off for this phone.", timeout=TIMEOUT_MS
    )
    assert await _devices(web, driver.token) == []
    after = await worker.evaluate("(data) => openFrom(data)", {**pushed.payload})
    assert after["receipt"] is None


async def test_a_rider_in_french_hears_the_sos_status_and_the_trip_by_push(
    web: Web, visit: Callable[..., Any], pushes: PushService
) -> None:
    rider = await make_rider(web.http, "Sophie Secours")
    phone = pushes.subscribe()
    app: Visit = await visit(language="fr", viewport=PHONE, permissions=["notifications"])
    await app.context.add_init_script(_subscription_of(phone))
    await app.goto("/static/favicon.svg")
    await app.page.evaluate(f"localStorage.setItem('coop.ride.token', {json.dumps(rider.token)})")
    await app.goto("/ride")
    toggle = app.page.locator("#push-switch")
    await toggle.check()
    await expect(app.page.locator("#push-status")).to_have_text(
        "Les notifications sont activées sur ce téléphone.", timeout=TIMEOUT_MS
    )
    [device] = await _devices(web, rider.token)
    assert device["language"] == "fr"
    await app.shot("ride-push-on-fr")
    await app.axe("/ride with notifications on, in French")

    # "Sign out everywhere" revokes the key the device was registered with (and so the device):
    # the app registers it again with the new key, and the worker's copy follows.
    await app.page.locator("#account summary").click()
    await app.page.locator("#signout-all").click()
    await expect(app.page.locator("#account-status")).not_to_be_empty(timeout=TIMEOUT_MS)
    new_token = await app.page.evaluate("localStorage.getItem('coop.ride.token')")
    assert new_token and new_token != rider.token
    # The old key's socket closing (revoked) does not sign the page out: it reconnects with the new.
    await expect(app.page.locator("#v-welcome")).to_be_hidden()
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not (renewed := await _devices(web, new_token)):
        assert time.monotonic() < deadline, "the device was not registered again"
        await asyncio.sleep(0.2)
    assert [(d["current_token"], d["language"]) for d in renewed] == [(True, "fr")]
    rider = Account(id=rider.id, token=new_token)

    await app.goto("/static/favicon.svg")
    cdp, registration_id = await _registration_id(app.page, "/ride")
    raised = await web.http.post(
        "/v1/sos",
        json={**DOWNTOWN, "detail": "Je ne me sens pas en sécurité"},
        headers=rider.headers,
    )
    assert raised.status_code == 201, raised.text
    alert_id = raised.json()["id"]
    first = await phone.next(timeout_s=10)
    assert first.payload == {"kind": "safety", "alert_id": alert_id, "status": "raised"}
    await _deliver(cdp, web, registration_id, first.payload)
    [shown] = await _notifications(app.page, "/ride", 1)
    assert shown["title"] == "Votre alerte d'urgence est parvenue à la co-op", shown
    assert shown["tag"] == f"sos-{alert_id}" and shown["lang"] == "fr"

    acknowledged = await web.http.post(
        f"/v1/safety/alerts/{alert_id}/acknowledge",
        headers={"Authorization": f"Bearer {web.admin_token}"},
    )
    assert acknowledged.status_code == 200, acknowledged.text
    second = await phone.next(timeout_s=10)
    assert second.payload["status"] == "acknowledged"
    await _deliver(cdp, web, registration_id, second.payload)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        [shown] = await _notifications(app.page, "/ride", 1)  # the same alert: replaced
        if shown["title"] != "Votre alerte d'urgence est parvenue à la co-op":
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert shown["title"] == "Une personne de la co-op a votre alerte", shown

    # A trip's change, as the service pushes it (dispatch/trips/push.py).
    trip_id = str(uuid.uuid4())
    await _deliver(
        cdp, web, registration_id, {"kind": "trip", "trip_id": trip_id, "status": "arrived"}
    )
    shown_all = await _notifications(app.page, "/ride", 2)
    trip = next(n for n in shown_all if n["tag"] == f"trip-{trip_id}")
    assert trip["title"] == "La personne au volant est là", trip
