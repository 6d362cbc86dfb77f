"""Reputation with dispatch's real trip flow and sockets: a completed trip is rateable, no rating
keeps a driver from being offered trips, and a connected appellant hears the decision at once."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.db import utcnow
from coop.settings import Settings
from dispatch.locations import service as locations_service
from server.app import create_app
from tests.builders import (
    DOWNTOWN,
    PLATEAU,
    Account,
    consented,
    live_server,
    make_driver,
    make_rider,
    socket,
)
from tests.reputation.helpers import (
    FOUNDING,
    assert_problem,
    install_policy,
    post_rating,
    rated_trip,
)

NEARBY = {"lat": 45.5030, "lon": -73.5660}  # a couple of hundred metres from DOWNTOWN
FARTHER = {"lat": 45.5120, "lon": -73.5600}  # over a kilometre away


@pytest.fixture(autouse=True)
def _founding_terms(app: FastAPI) -> None:
    install_policy(app, FOUNDING)


async def on_duty(
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    driver: Account,
    at: dict[str, float],
) -> None:
    """The driver goes available and reports a position, as their socket would."""
    now = utcnow()
    async with sessionmaker() as session:
        await locations_service.set_availability(
            session=session,
            driver_id=driver.id,
            available=True,
            now=now,
            grace_s=settings.driver_grace_s,
        )
        await session.commit()
    app.state.locations.report(
        driver.id, lat=at["lat"], lon=at["lon"], heading_deg=None, speed_mps=None, received_at=now
    )
    await app.state.locations.flush()


async def request_trip(client: AsyncClient, rider: Account) -> dict[str, Any]:
    body = await consented(client, rider, {"pickup": DOWNTOWN, "dropoff": PLATEAU})
    response = await client.post("/v1/trips", json=body, headers=rider.headers)
    assert response.status_code == 201, response.text
    trip: dict[str, Any] = response.json()
    return trip


async def test_a_trip_completed_through_dispatch_is_rated_once_by_its_rider(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    await on_duty(app, sessionmaker, settings, driver, NEARBY)
    trip = await request_trip(client, rider)

    assert_problem(await post_rating(client, rider, trip["id"], 5), 409, "trip_not_completed")

    report = await app.state.matcher.run_batch()
    [offer] = report.offers
    assert offer.driver_id == driver.id
    accepted = await client.post(f"/v1/offers/{offer.id}/accept", headers=driver.headers)
    assert accepted.status_code == 200, accepted.text
    for step in ("arrived", "start"):
        moved = await client.post(f"/v1/trips/{trip['id']}/{step}", headers=driver.headers)
        assert moved.status_code == 200, moved.text
        assert_problem(await post_rating(client, rider, trip["id"], 5), 409, "trip_not_completed")
    completed = await client.post(f"/v1/trips/{trip['id']}/complete", headers=driver.headers)
    assert completed.status_code == 200, completed.text
    assert completed.json()["status"] == "completed"

    rated = await post_rating(client, rider, trip["id"], 4, tags=["friendly"])
    assert rated.status_code == 201, rated.text
    assert_problem(await post_rating(client, rider, trip["id"], 1), 409, "already_rated")
    other_rider = await make_rider(client)
    assert_problem(await post_rating(client, other_rider, trip["id"], 1), 403, "not_your_trip")
    mine = (await client.get("/v1/drivers/me/ratings", headers=driver.headers)).json()
    assert [(r["trip_id"], r["stars"], r["counted"]) for r in mine] == [(trip["id"], 4, True)]


async def test_a_driver_far_below_every_threshold_keeps_receiving_offers(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    low = await make_driver(client, admin_headers, name="Lowly Rated")
    high = await make_driver(client, admin_headers, name="Highly Rated")
    for _ in range(25):
        await rated_trip(client, sessionmaker, await make_rider(client), low, 1)
        await rated_trip(client, sessionmaker, await make_rider(client), high, 5)
    standing = (await client.get("/v1/drivers/me/reputation", headers=low.headers)).json()
    assert standing["score"] == "2.06"  # far below the 4.2 support threshold
    assert standing["support_case"] is not None
    me = (await client.get("/v1/drivers/me", headers=low.headers)).json()
    assert me["status"] == "active"

    # The low-rated driver is nearer: the offer is theirs, exactly as with no ratings at all.
    await on_duty(app, sessionmaker, settings, low, NEARBY)
    await on_duty(app, sessionmaker, settings, high, FARTHER)
    trip = await request_trip(client, await make_rider(client))
    report = await app.state.matcher.run_batch()

    assert [(str(offer.trip_id), offer.driver_id) for offer in report.offers] == [
        (trip["id"], low.id)
    ]
    accepted = await client.post(f"/v1/offers/{report.offers[0].id}/accept", headers=low.headers)
    assert accepted.status_code == 200, accepted.text


async def test_a_connected_appellant_is_told_the_decision_on_their_socket(
    settings: Settings,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    app = create_app(settings)
    install_policy(app, FOUNDING)
    async with live_server(app) as base_url, AsyncClient(base_url=base_url) as http:
        rider = await make_rider(http)
        driver = await make_driver(http, admin_headers)
        reviewer = await make_driver(http, admin_headers, reviewer=True)
        rating = await rated_trip(http, sessionmaker, rider, driver, 1, tags=["rude"])
        appeal = await http.post(
            f"/v1/ratings/{rating['id']}/appeal",
            json={"statement": "I was polite throughout"},
            headers=driver.headers,
        )
        assert appeal.status_code == 201, appeal.text
        async with socket(base_url, "/v1/ws/driver", driver.token) as driver_ws:
            decided = await http.post(
                f"/v1/appeals/{appeal.json()['id']}/decision",
                json={"outcome": "rating_removed", "reason": "No sign of rudeness"},
                headers=reviewer.headers,
            )
            assert decided.status_code == 200, decided.text
            frame = await driver_ws.next("appeal_decided")
    assert frame["appeal"]["id"] == appeal.json()["id"]
    assert frame["appeal"]["outcome"] == "rating_removed"
    assert frame["appeal"]["reason"] == "No sign of rudeness"
    assert frame["appeal"]["rating"]["rater"].startswith("rider-")
