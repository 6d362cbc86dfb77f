"""Accepting needs an active member, `arrived` needs the pickup, a fee needs a real approach,
and a driver never learns who their rider is beyond the first name the rider chose to share."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from coop.settings import Settings
from dispatch.trips.models import Offer, OfferStatus
from server.app import create_app
from tests.builders import (
    DOWNTOWN,
    PLATEAU,
    Account,
    live_server,
    make_driver,
    make_rider,
    offer_to,
    place_driver,
    request_trip,
    socket,
)

# About 4.4 km north-west of DOWNTOWN: within the founding 6 km pickup radius.
FAR = {"lat": 45.5300, "lon": -73.6050}
# About 2.2 km from DOWNTOWN, on the way from FAR.
HALFWAY = {"lat": 45.5160, "lon": -73.5860}


async def _offered(
    app: FastAPI, client: AsyncClient, rider: Account, driver: Account, at: dict[str, float]
) -> tuple[dict[str, Any], uuid.UUID]:
    trip = await request_trip(client, rider, pickup=DOWNTOWN, dropoff=PLATEAU)
    await place_driver(app, driver.id, at)
    return trip, await offer_to(app, driver)


async def _age_assignment(session: AsyncSession, trip_id: str, seconds: int) -> None:
    await session.execute(
        text(
            "UPDATE trip SET assigned_at = assigned_at - make_interval(secs => :s) WHERE id = :id"
        ),
        {"s": seconds, "id": trip_id},
    )
    await session.commit()


async def _deactivate(client: AsyncClient, admin_headers: dict[str, str], driver: Account) -> None:
    response = await client.post(
        f"/v1/drivers/{driver.id}/status",
        json={"status": "inactive", "reason": "Membership suspended by the general assembly"},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text


# --- finding 7: a deactivated driver cannot accept --------------------------------------------


async def test_a_driver_deactivated_with_an_offer_pending_cannot_accept_it(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip, offer_id = await _offered(app, client, rider, driver, DOWNTOWN)
    await _deactivate(client, admin_headers, driver)
    response = await client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
    assert response.status_code == 409, response.text
    assert response.json()["type"] == "driver_not_active"
    # The offer is withdrawn at once, so the trip goes back to matching; nothing was assigned.
    offer = await session.scalar(select(Offer).where(Offer.id == offer_id))
    assert offer is not None and offer.status is OfferStatus.withdrawn
    seen = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert seen["status"] == "requested" and seen["driver_id"] is None


async def test_a_deactivation_racing_the_accept_is_seen_by_it(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    settings: Settings,
) -> None:
    """The deactivation holds the driver's row, uncommitted, when the accept arrives: the
    accept waits for it and then refuses."""
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip, offer_id = await _offered(app, client, rider, driver, DOWNTOWN)
    async with app.state.engine.connect() as deactivation:
        transaction = await deactivation.begin()
        await deactivation.execute(
            text("UPDATE driver SET status = 'inactive' WHERE id = :id"), {"id": driver.id}
        )
        accepting = asyncio.create_task(
            client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
        )
        # Wait (bounded) until the accept is blocked on the driver's row lock.
        for _ in range(200):
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query ILIKE '%FROM driver%FOR SHARE%'"
                )
            )
            await session.commit()
            if waiting:
                break
            assert not accepting.done(), (await accepting).text
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the accept never waited for the driver's row")
        await transaction.commit()
    response = await accepting
    assert response.status_code == 409, response.text
    assert response.json()["type"] == "driver_not_active"
    seen = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert seen["status"] == "requested"


# --- finding 7: arrived only at the pickup; a fee only for a real approach ---------------------


async def test_arrived_from_kilometres_away_is_refused_and_the_rider_cancels_free(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip, offer_id = await _offered(app, client, rider, driver, FAR)
    assert (
        await client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
    ).status_code == 200
    response = await client.post(f"/v1/trips/{trip['id']}/arrived", headers=driver.headers)
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"] == "not_at_pickup"
    assert problem["arrival_radius_m"] == 250 and 4000 < problem["distance_m"] < 5000
    # After the free period, with the driver still where they were: not approaching, free.
    await _age_assignment(session, trip["id"], 180)
    cancelled = await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["cancellation_fee"] == "0.00"
    assert "not approaching" in body["cancellation_fee_reason"]


async def test_a_fee_after_the_free_period_when_the_driver_is_approaching(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip, offer_id = await _offered(app, client, rider, driver, FAR)
    await client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
    await place_driver(app, driver.id, HALFWAY)  # 2 km closer than when offered
    await _age_assignment(session, trip["id"], 180)
    body = (await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)).json()
    assert body["cancellation_fee"] == "5.00"
    assert "approaching" in body["cancellation_fee_reason"]


async def test_a_fee_after_a_real_arrival_and_none_within_the_free_period(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip, offer_id = await _offered(app, client, rider, driver, FAR)
    await client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
    await place_driver(app, driver.id, {"lat": 45.5026, "lon": -73.5673})  # 100 m away
    arrived = await client.post(f"/v1/trips/{trip['id']}/arrived", headers=driver.headers)
    assert arrived.status_code == 200, arrived.text
    # Within the free period, even after arrival: free (the agreement's free_period_s).
    other_rider = await make_rider(client)
    other_driver = await make_driver(client, admin_headers)
    other, other_offer = await _offered(app, client, other_rider, other_driver, DOWNTOWN)
    await client.post(f"/v1/offers/{other_offer}/accept", headers=other_driver.headers)
    early = await client.post(f"/v1/trips/{other['id']}/cancel", headers=other_rider.headers)
    assert early.json()["cancellation_fee"] == "0.00"
    assert "free period" in early.json()["cancellation_fee_reason"]
    await _age_assignment(session, trip["id"], 180)
    late = (await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)).json()
    assert late["cancellation_fee"] == "5.00"
    assert "arrived" in late["cancellation_fee_reason"]


# --- finding 3: what a driver sees of a trip ----------------------------------------------------


async def test_the_driver_never_sees_the_riders_account_only_the_shared_first_name(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    app = create_app(settings)
    async with live_server(app) as base_url, AsyncClient(base_url=base_url) as client:
        created = await client.post(
            "/v1/riders", json={"name": "Rosa Tremblay-Ouellet", "first_name": "Rosa"}
        )
        assert created.status_code == 201, created.text
        rider = Account(id=uuid.UUID(created.json()["id"]), token=created.json()["token"])
        driver = await make_driver(client, admin_headers)
        async with socket(base_url, "/v1/ws/driver", driver.token) as driver_socket:
            trip, offer_id = await _offered(app, client, rider, driver, DOWNTOWN)
            await client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
            for step in ("arrived", "start", "complete"):
                response = await client.post(
                    f"/v1/trips/{trip['id']}/{step}", headers=driver.headers
                )
                assert response.status_code == 200, response.text
                assert str(rider.id) not in response.text
            await driver_socket.trip("completed")
            frames = json.dumps(driver_socket.seen)
        seen = await client.get(f"/v1/trips/{trip['id']}", headers=driver.headers)
        export = await client.get("/v1/drivers/me/export", headers=driver.headers)
        mine = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
        # The rider withdraws the name: drivers see none from then on.
        withdrawn = await client.patch(
            "/v1/riders/me", json={"first_name": None}, headers=rider.headers
        )
        after = (await client.get(f"/v1/trips/{trip['id']}", headers=driver.headers)).json()
    for text_seen in (seen.text, export.text, frames):
        assert str(rider.id) not in text_seen
        assert "Tremblay" not in text_seen
    body = seen.json()
    assert body["rider_id"] is None and body["rider"] == {"first_name": "Rosa"}
    assert body["pickup"] == DOWNTOWN
    # The rider sees their own account id, as protocol v1 has it, and no rider block.
    assert mine["rider_id"] == str(rider.id) and mine["rider"] is None
    assert withdrawn.status_code == 200 and withdrawn.json()["first_name"] is None
    assert after["rider"] == {"first_name": None}


async def test_a_first_name_is_bounded_and_checked(client: AsyncClient) -> None:
    too_long = await client.post("/v1/riders", json={"name": "Rosa", "first_name": "R" * 51})
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "first_name"
    empty = await client.post("/v1/riders", json={"name": "Rosa", "first_name": ""})
    assert empty.status_code == 422
    rider = await make_rider(client)
    unknown = await client.patch("/v1/riders/me", json={"nickname": "R"}, headers=rider.headers)
    assert unknown.status_code == 422
    nobody = await client.patch("/v1/riders/me", json={"first_name": "R"})
    assert nobody.status_code == 401
