"""The rider app (`/ride`) and the driver app (`/drive`) in Chromium at phone size, with touch
and an emulated position, against the real service (docs/apps.md).

A rider opens an account, places the destination, reads the price, consents and requests; a
simulated driver (the simulator's agent, over the real protocol) comes and completes the trip;
the rider reads the receipt and rates. A driver goes available, moving, gets an offer card for
a rider's request over the API, accepts, arrives, starts and completes. Each trip survives a
page reload and a socket the server cuts. One flow per language keeps the time small.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest_asyncio
from playwright.async_api import Page, expect
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from coop.auth import AuthToken, hash_token
from coop.db import utcnow
from coop.geo import ServiceArea
from coop.settings import Settings
from server.app import create_app
from server.simulator import registration
from server.simulator.agents import Registered, SimDriver
from server.simulator.client import ServiceClient
from server.simulator.config import SimulationConfig
from server.simulator.movement import Point
from server.simulator.stats import CityStats
from tests.builders import DOWNTOWN, Account, live_server, local_today, north, request_trip
from tests.web.conftest import PHONE, Clock, Visit, Web, _empty_everything, chromium_path

TIMEOUT_MS = 30_000
# The service's clock runs 8 times faster for the meter and the plausibility of moves (as in the
# demo), so the simulated car can cover a short trip in a few real seconds.
TIME_SCALE = 8.0


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def web(base_settings: Settings, engine: AsyncEngine) -> AsyncIterator[Web]:
    """The service as it runs (matcher, position flushes and sweeps in the background)."""
    from playwright.async_api import async_playwright

    settings = base_settings.model_copy(
        update={"background_tasks": True, "meter_time_scale": TIME_SCALE}
    )
    await _empty_everything(settings, engine)
    app = create_app(settings)
    app.state.clock = Clock()
    try:
        async with (
            live_server(app) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=30) as http,
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


def phone(position: dict[str, float]) -> dict[str, Any]:
    """A phone's browser: touch, its position known and allowed."""
    return {
        "viewport": PHONE,
        "has_touch": True,
        "is_mobile": True,
        "geolocation": {"latitude": position["lat"], "longitude": position["lon"]},
        "permissions": ["geolocation"],
    }


async def new_driver(web: Web, number: int, name: str) -> Account:
    response = await web.http.post(
        "/v1/drivers",
        headers={"Authorization": f"Bearer {web.admin_token}"},
        json=registration.driver_body(
            number,
            local_today(),
            name=name,
            member_number=f"APP-{number}",
            plate=f"APP {number}",
            simulated=True,
        ),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(id=body["id"], token=body["token"])


@contextlib.asynccontextmanager
async def simulated_driver(
    web: Web, account: Account, near: dict[str, float]
) -> AsyncIterator[SimDriver]:
    """The simulator's driver agent near `near`, taking every offer, until the block ends."""
    config = SimulationConfig(
        base_url=web.base_url,
        speedup=TIME_SCALE,
        service_time_scale=TIME_SCALE,
        center=Point(near["lat"], near["lon"]),
        spread_m=150,
        decline_rate=0.0,
        think_min_s=1,
        think_max_s=2,
        boarding_min_s=8,
        boarding_max_s=12,
        min_frame_interval_s=0.3,
    )
    stop = asyncio.Event()
    stats = CityStats()
    async with httpx.AsyncClient(base_url=web.base_url, timeout=30) as http:
        agent = SimDriver(
            number=1,
            account=Registered(id=str(account.id), token=account.token),
            client=ServiceClient(http, stats),
            config=config,
            area=ServiceArea.from_file(config.service_area),
            center=Point(near["lat"], near["lon"]),
            stats=stats,
            rng=random.Random(26),
            stop=stop,
        )
        running = asyncio.create_task(agent.run())
        try:
            yield agent
        finally:
            stop.set()
            await asyncio.wait_for(running, timeout=10)


async def sockets(page: Page) -> int:
    return int(await page.locator("body").get_attribute("data-sockets") or "0")


async def no_sideways_scroll(page: Page, label: str) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{label} scrolls sideways on a phone ({width}px)"


KEPT_JS = """async () => {
  await navigator.serviceWorker.ready;
  const kept = [];
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) kept.push(new URL(request.url).pathname);
  }
  return kept;
}"""


async def test_a_rider_requests_rides_and_rates_in_english(
    web: Web, visit: Callable[..., Any], engine: AsyncEngine
) -> None:
    pickup = DOWNTOWN
    v: Visit = await visit(language="en", **phone(pickup))
    page = v.page
    await v.goto("/ride")
    await expect(page.locator("#welcome-title")).to_be_visible()
    await v.axe("/ride, welcome (en)")
    await v.shot("ride-welcome-en", full_page=False)
    # A key that is not one: said plainly, nothing stored.
    await page.locator("#signin-key").fill("not-a-key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#signin-error")).to_contain_text("not valid")
    v.errors.clear()  # the browser logs the refused call the test made on purpose
    await page.locator("#signup-name").fill("Lucie Gagnon")
    await page.locator("#signup-first").fill("Lucie")
    await page.get_by_role("button", name="Open my account").click()
    await expect(page.locator("#plan-title")).to_be_visible()
    await expect(page.locator("#pickup-text")).to_have_text("Your position")
    # A key past half its life is renewed when the app starts; the old one keeps working.
    old_key = await page.evaluate("localStorage.getItem('coop.ride.token')")
    async with engine.begin() as connection:
        await connection.execute(
            update(AuthToken)
            .where(AuthToken.token_hash == hash_token(old_key))
            .values(
                created_at=utcnow() - timedelta(days=20), expires_at=utcnow() + timedelta(days=10)
            )
        )
    await page.reload()
    await expect(page.locator("#plan-title")).to_be_visible()
    await page.wait_for_function(
        "(old) => localStorage.getItem('coop.ride.token') !== old", arg=old_key
    )
    new_key = await page.evaluate("localStorage.getItem('coop.ride.token')")
    for key in (old_key, new_key):
        me = await web.http.get("/v1/riders/me", headers={"Authorization": f"Bearer {key}"})
        assert me.json()["name"] == "Lucie Gagnon"
    # The quote needs a destination first.
    await page.get_by_role("button", name="See the price").click()
    await expect(page.locator("#plan-error")).to_contain_text("destination")
    # The destination: a tap on the map, north-east of the pickup.
    box = await page.locator("#plan-map").bounding_box()
    assert box is not None
    await page.locator("#plan-map").click(
        position={"x": box["width"] / 2 + 90, "y": box["height"] / 2 - 90}
    )
    await expect(page.locator("#dropoff-text")).to_contain_text("Pin at 45.5")
    await v.axe("/ride, planning (en)")
    await v.shot("ride-plan-en", full_page=False)
    await page.get_by_role("button", name="See the price").click()
    await expect(page.locator("#quote-title")).to_be_visible()
    await expect(page.locator("#quote-lines")).to_contain_text("Fare estimate")
    await expect(page.locator("#quote-lines")).to_contain_text("QST")
    await expect(page.locator("#quote-max")).to_contain_text("$")
    await expect(page.locator("#quote-cancel-rule")).to_contain_text("$5.00")
    await v.axe("/ride, the price (en)")
    await v.shot("ride-quote-en")
    driver = await new_driver(web, 1, "Amira Haddad")
    async with simulated_driver(web, driver, pickup):
        await page.locator("#request").click()
        title = page.locator("#trip-title")
        await expect(title).to_have_text(["Looking for a driver…"], timeout=TIMEOUT_MS)
        await v.shot("ride-searching-en", full_page=False)
        await expect(title).to_have_text("Amira Haddad is on the way", timeout=TIMEOUT_MS)
        await expect(page.locator("#plate-text")).to_have_text("APP 1")
        await v.axe("/ride, a driver on the way (en)")
        await v.shot("ride-assigned-en")
        # A reload in the middle of the trip: the socket brings the trip back.
        await page.reload()
        await expect(page.locator("#v-trip")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(page.locator("#driver-name")).to_have_text("Amira Haddad")
        # The server cuts the socket: the app reconnects and shows the trip as it now is.
        opened = await sockets(page)
        assert web.app.state.hub.resync() >= 1
        await expect(page.locator("body")).to_have_attribute(
            "data-sockets", str(opened + 1), timeout=TIMEOUT_MS
        )
        await expect(page.locator("#done-title")).to_have_text("You have arrived", timeout=60_000)
    receipt = page.locator("#receipt table")
    await expect(receipt).to_contain_text("Base fare")
    await expect(receipt).to_contain_text("Billed")
    await expect(page.locator("#receipt")).to_contain_text("Priced under agreement version 1")
    await v.axe("/ride, the receipt (en)")
    await v.shot("ride-receipt-en")
    await page.locator("label.star").nth(4).click()
    await page.get_by_label("The driver was friendly and courteous").check()
    await page.locator("#comment").fill("Smooth and on time.")
    await page.get_by_role("button", name="Send my rating").click()
    await expect(page.locator("#rated")).to_be_visible()
    ratings = await web.http.get("/v1/drivers/me/ratings", headers=driver.headers)
    assert [(r["stars"], r["tags"], r["comment"]) for r in ratings.json()] == [
        (5, ["friendly"], "Smooth and on time.")
    ]
    # Past trips, with their receipts.
    await page.get_by_role("button", name="Your trips").click()
    await expect(page.locator("#history-list li")).to_have_count(1)
    await page.locator("#history-list").get_by_role("button", name="Receipt").click()
    await expect(page.locator("#history-receipt table")).to_contain_text("Billed")
    await v.shot("ride-history-en")
    await no_sideways_scroll(page, "/ride")
    # Installed: the service worker keeps the shell, never an API answer.
    kept = await page.evaluate(KEPT_JS)
    assert "/ride" in kept and "/static/apps/ride.js" in kept, kept
    assert not [path for path in kept if path.startswith("/v1")], kept
    # Offline, the installed app still opens, and says the service cannot be reached.
    await v.context.set_offline(True)
    await page.reload()
    await expect(page.locator("#connection")).to_contain_text("could not be reached")
    await v.context.set_offline(False)
    v.errors[:] = [e for e in v.errors if "ERR_INTERNET_DISCONNECTED" not in e]
    await expect(page.locator("#plan-title")).to_be_visible(timeout=TIMEOUT_MS)
    # At 200 % text nothing runs off the side.
    await page.evaluate("document.documentElement.style.fontSize = '200%'")
    await no_sideways_scroll(page, "/ride at 200 % text")
    # The driver app in English, before signing in.
    other: Visit = await visit(language="en", **phone(pickup))
    await other.goto("/drive")
    await expect(other.page.locator("#signin-title")).to_have_text("Drive with the co-op")
    await other.axe("/drive, sign-in (en)")
    await other.shot("drive-signin-en", full_page=False)


async def walk(page: Page, start: dict[str, float], end: dict[str, float], steps: int) -> None:
    """Moves the phone's emulated position from `start` to `end` in `steps` fixes."""
    for i in range(1, steps + 1):
        f = i / steps
        await page.context.set_geolocation(
            {
                "latitude": start["lat"] + (end["lat"] - start["lat"]) * f,
                "longitude": start["lon"] + (end["lon"] - start["lon"]) * f,
            }
        )
        await asyncio.sleep(0.4)


async def test_a_driver_takes_and_drives_a_trip_in_french(
    web: Web, visit: Callable[..., Any]
) -> None:
    pickup = DOWNTOWN
    start = north(400, 200)
    dropoff = north(-700, 500)
    driver = await new_driver(web, 2, "Jean-François Roy")
    # At night: the phone in dark mode, so the driver app is dark.
    v: Visit = await visit(language="fr", color_scheme="dark", **phone(start))
    page = v.page
    await v.goto("/drive")
    await expect(page.locator("#signin-title")).to_have_text("Conduire avec la coopérative")
    await v.axe("/drive, connexion (fr)")
    await page.locator("#signin-key").fill(driver.token)
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page.locator("#duty")).to_have_text("Me rendre disponible")
    await expect(page.locator("#reporting")).to_contain_text("que lorsque vous êtes disponible")
    await v.shot("drive-off-fr", full_page=False)
    await page.locator("#duty").click()
    await expect(page.locator("#duty-text")).to_contain_text("Vous êtes disponible")
    await expect(page.locator("#reporting")).to_contain_text("toutes les 4 s")
    await walk(page, start, north(350, 200), 2)
    offer = page.locator("#offer")
    # Declining: said to cost nothing, and the request is not offered to this driver again.
    first = Account(**(await _rider(web, "Ana")))
    await request_trip(web.http, first, pickup=north(300, 200), dropoff=dropoff)
    await expect(offer).to_be_visible(timeout=TIMEOUT_MS)
    await page.get_by_role("button", name="Refuser").click()
    await expect(page.locator("#notices")).to_have_text("Refusée. Rien ne compte contre vous.")
    await expect(offer).to_be_hidden()
    # A race: the rider cancels as the driver accepts. Whichever the service saw first, the card
    # goes, the driver is told, and no trip is left on the screen.
    racing = Account(**(await _rider(web, "Léa")))
    raced = await request_trip(web.http, racing, pickup=north(250, 150), dropoff=dropoff)
    await expect(offer).to_be_visible(timeout=TIMEOUT_MS)
    cancel = asyncio.create_task(
        web.http.post(f"/v1/trips/{raced['id']}/cancel", json={}, headers=racing.headers)
    )
    await page.evaluate("document.getElementById('accept').click()")
    assert (await cancel).status_code in {200, 409}
    await expect(offer).to_be_hidden()
    if (await web.http.get(f"/v1/trips/{raced['id']}", headers=racing.headers)).json()[
        "status"
    ] == "cancelled":
        await expect(page.locator("#notices")).to_have_text(
            re.compile(
                "La personne passagère a annulé|Cette offre n'est plus ouverte"
                "|La course a été annulée"
            )
        )
    else:  # the accept came first: the trip is the driver's, who cancels it at no cost to anyone
        await expect(page.locator("#trip")).to_be_visible()
        page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await page.locator("#cancel-trip").click()
        await expect(page.locator("#ended-title")).to_have_text("La course a été annulée")
    if await page.locator("#ended").is_visible():
        await page.get_by_role("button", name="Retour aux offres").click()
    v.errors[:] = [e for e in v.errors if "status of 409" not in e]
    rider = Account(**(await _rider(web, "Rosa")))
    trip = await request_trip(web.http, rider, pickup=pickup, dropoff=dropoff)
    await expect(offer).to_be_visible(timeout=TIMEOUT_MS)
    await expect(page.locator("#offer-fare")).to_contain_text("$")
    await expect(page.locator("#offer-earnings")).to_contain_text("$")
    await expect(page.locator("#offer-why")).not_to_be_empty()
    await expect(offer).to_contain_text("Refuser n'est jamais pénalisé")
    await v.axe("/drive, une offre (fr)")
    await v.shot("drive-offer-fr", full_page=False)
    await page.get_by_role("button", name="Accepter").click()
    title = page.locator("#trip-title")
    await expect(title).to_have_text("Prendre Rosa")
    await expect(page.locator("#nav-geo")).to_have_attribute(
        "href", f"geo:{pickup['lat']},{pickup['lon']}?q={pickup['lat']},{pickup['lon']}"
    )
    await expect(page.locator("#nav-osm")).to_have_attribute(
        "href", re.compile(r"openstreetmap\.org")
    )
    await v.axe("/drive, vers le client (fr)")
    await v.shot("drive-to-pickup-fr", full_page=False)
    # A reload on the way: the socket brings the trip back.
    await page.reload()
    await expect(title).to_have_text("Prendre Rosa", timeout=TIMEOUT_MS)
    await walk(page, north(350, 200), pickup, 3)
    step = page.locator("#step")
    await _step_until(page, "Je suis sur place", "En attente de la personne passagère")
    await v.shot("drive-arrived-fr", full_page=False)
    # The server cuts the socket: the app reconnects and resumes.
    opened = await sockets(page)
    assert web.app.state.hub.resync() >= 1
    await expect(page.locator("body")).to_have_attribute(
        "data-sockets", str(opened + 1), timeout=TIMEOUT_MS
    )
    await expect(title).to_have_text("En attente de la personne passagère")
    await step.click()  # start
    await expect(title).to_have_text("En route vers la destination")
    await walk(page, pickup, dropoff, 6)
    await step.click()  # complete
    await expect(page.locator("#ended-title")).to_have_text("Course terminée")
    done = (await web.http.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert done["status"] == "completed"
    assert done["fare"]["distance_m"] > 0, done["fare"]  # the app's reports were metered
    facts = page.locator("#ended-facts")
    fare = done["fare"]
    await expect(facts).to_contain_text(fare["driver_earnings"].replace(".", ","))
    await expect(facts).to_contain_text(fare["total"].replace(".", ","))
    await v.axe("/drive, course terminée (fr)")
    await v.shot("drive-completed-fr", full_page=False)
    await page.get_by_role("button", name="Retour aux offres").click()
    await page.locator("#duty").click()
    await expect(page.locator("#duty-text")).to_have_text("Vous ne prenez pas de courses.")
    await no_sideways_scroll(page, "/drive")
    # The rider app in French, before signing up.
    other: Visit = await visit(language="fr", **phone(pickup))
    await other.goto("/ride")
    await expect(other.page.locator("#welcome-title")).to_have_text(
        "Roulez avec la coopérative des chauffeurs et chauffeuses"
    )
    await other.axe("/ride, accueil (fr)")
    await other.shot("ride-welcome-fr", full_page=False)


async def _rider(web: Web, first_name: str) -> dict[str, Any]:
    response = await web.http.post(
        "/v1/riders", json={"name": f"{first_name} Rider", "first_name": first_name}
    )
    assert response.status_code == 201, response.text
    return {"id": response.json()["id"], "token": response.json()["token"]}


async def _step_until(page: Page, button: str, then: str) -> None:
    """Presses a trip step until the trip moves on: the service checks the newest position,
    which may still be on its way to it."""
    for _ in range(10):
        await page.get_by_role("button", name=button).click()
        with contextlib.suppress(AssertionError):
            await expect(page.locator("#trip-title")).to_have_text(then, timeout=1500)
            return
    await expect(page.locator("#trip-title")).to_have_text(then)
