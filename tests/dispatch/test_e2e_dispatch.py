"""End to end over real sockets: a request is offered to the nearest driver, declined, offered to
the next, accepted, driven and completed with the exact agreement fare; the rider sees every step
and the driver's live position. Two app instances sharing Redis deliver across workers."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest_asyncio
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from coop.geo import haversine_m
from coop.settings import Settings
from server.app import create_app
from tests.builders import (
    DOWNTOWN,
    Account,
    consented,
    go_online,
    live_server,
    make_driver,
    make_rider,
    place_driver,
    socket,
)

# Founding agreement (bargaining/founding_agreement.yaml), standard class.
BASE, PER_KM, PER_MINUTE, MINIMUM = Decimal("3.50"), Decimal("1.05"), Decimal("0.35"), Decimal("7")
FLOOR_PER_KM, FLOOR_PER_MINUTE = Decimal("0.85"), Decimal("0.30")
COMMISSION_PERCENT, COMMISSION_CAP = Decimal("8"), Decimal("2.50")

NEAR = {"lat": 45.5040, "lon": -73.5690}  # about 300 m from DOWNTOWN
FARTHER = {"lat": 45.5110, "lon": -73.5720}  # about 1.1 km from DOWNTOWN
DROPOFF = {"lat": 45.5850, "lon": -73.6350}  # Montréal-Nord
NEAR_PICKUP = {"lat": 45.5030, "lon": -73.5680}  # about 155 m from DOWNTOWN
# The first metres of the ride, as the app reports them: one position every 110 ms (the service
# takes one per 100 ms at most), 2.2 m apart (20 m/s, believable over any stretch of them: the
# meter's allowances hold per stretch, not per report), so the meter's sum is known exactly.
ROUTE = [{"lat": round(45.5030 + 0.00002 * i, 6), "lon": -73.5680} for i in range(15)]
REPORT_EVERY_S = 0.11


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def agreement_fare(distance_m: int, duration_s: int) -> dict[str, str]:
    """docs/agreement.md, "Pricing a metered trip", written out independently of the fare engine."""
    km = Decimal(distance_m) / 1000
    minutes = Decimal(duration_s) / 60
    total = cents(max(MINIMUM, BASE + PER_KM * km + PER_MINUTE * minutes))
    floor = cents(FLOOR_PER_KM * km + FLOOR_PER_MINUTE * minutes)
    commission = max(
        Decimal(0), min(cents(COMMISSION_PERCENT / 100 * total), COMMISSION_CAP, total - floor)
    )
    return {
        "total": f"{total:.2f}",
        "driver_earnings": f"{total - commission:.2f}",
        "coop_commission": f"{commission:.2f}",
    }


@dataclass
class Served:
    app: FastAPI
    base_url: str
    http: AsyncClient


@pytest_asyncio.fixture
async def served(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Served]:
    app = create_app(settings)
    async with live_server(app) as base_url, AsyncClient(base_url=base_url) as http:
        yield Served(app, base_url, http)


async def test_request_decline_accept_drive_complete_with_the_agreement_fare(
    served: Served, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    http, app = served.http, served.app
    rider = await make_rider(http)
    near = await make_driver(http, admin_headers, name="Near Driver")
    farther = await make_driver(http, admin_headers, name="Farther Driver")

    async with AsyncExitStack() as stack:
        rider_ws = await stack.enter_async_context(
            socket(served.base_url, "/v1/ws/rider", rider.token)
        )
        near_ws = await stack.enter_async_context(
            socket(served.base_url, "/v1/ws/driver", near.token)
        )
        far_ws = await stack.enter_async_context(
            socket(served.base_url, "/v1/ws/driver", farther.token)
        )
        await go_online(near_ws, NEAR)
        await go_online(far_ws, FARTHER)
        await app.state.locations.flush()

        body = await consented(http, rider, {"pickup": DOWNTOWN, "dropoff": DROPOFF})
        requested = await http.post("/v1/trips", json=body, headers=rider.headers)
        assert requested.status_code == 201, requested.text
        trip_id = requested.json()["id"]
        assert (await rider_ws.trip("requested"))["id"] == trip_id

        # The nearest driver gets the offer first, with the reason in words and figures.
        report = await app.state.matcher.run_batch()
        assert len(report.offers) == 1
        offer = await near_ws.next("offer")
        assert offer["trip_id"] == trip_id
        assert offer["pickup"] == DOWNTOWN and offer["dropoff"] == DROPOFF
        assert 250 <= offer["pickup_distance_m"] <= 350
        assert offer["why"].startswith("0.3 km away")
        assert offer["fare_estimate"] == requested.json()["quote"]["total"]
        assert offer["currency"] == "CAD"
        datetime.fromisoformat(offer["expires_at"])
        await far_ws.nothing("offer")

        declined = await http.post(f"/v1/offers/{offer['offer_id']}/decline", headers=near.headers)
        assert declined.status_code == 200, declined.text
        assert declined.json()["status"] == "declined"

        # The next batch offers it to the next driver, never again to the one who declined.
        report = await app.state.matcher.run_batch()
        assert len(report.offers) == 1
        second = await far_ws.next("offer")
        assert second["trip_id"] == trip_id
        assert second["why"].startswith("1.1 km away")
        await near_ws.nothing("offer")

        accepted = await http.post(
            f"/v1/offers/{second['offer_id']}/accept", headers=farther.headers
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "assigned"
        assigned = await rider_ws.trip("assigned")
        assert assigned["driver_id"] == str(farther.id)
        assert assigned["driver"]["name"] == "Farther Driver"
        assert assigned["driver"]["vehicle"]["plate"] == "FXK 123"
        assert (await far_ws.trip("assigned"))["id"] == trip_id

        # On the way: the rider watches the driver come. (The drive itself is not waited for:
        # the driver is put near the pickup, as a new start the meter counts nothing from.)
        await place_driver(app, farther.id, NEAR_PICKUP)
        live = await rider_ws.next("driver_location")
        eta_s = live.pop("eta_s")
        assert live == {
            "type": "driver_location",
            "trip_id": trip_id,
            **NEAR_PICKUP,
            "heading_to": "pickup",
        }
        # Near the pickup: a short drive, by the same model as quotes (never negative).
        assert isinstance(eta_s, int) and 0 <= eta_s < 300

        for step, status in (("arrived", "arrived"), ("start", "in_progress")):
            moved = await http.post(f"/v1/trips/{trip_id}/{step}", headers=farther.headers)
            assert moved.status_code == 200, moved.text
            assert (await rider_ws.trip(status))["status"] == status

        # Ten minutes into the ride: everything so far happened ten minutes earlier (the clock
        # is moved, not waited for).
        for statement in (
            "UPDATE trip SET requested_at = requested_at - interval '10 minutes',"
            " assigned_at = assigned_at - interval '10 minutes',"
            " arrived_at = arrived_at - interval '10 minutes',"
            " started_at = started_at - interval '10 minutes' WHERE id = :id",
            "UPDATE location_trail_point SET recorded_at = recorded_at - interval '10 minutes'"
            " WHERE trip_id = :id",
        ):
            await session.execute(text(statement), {"id": uuid.UUID(trip_id)})
        await session.commit()
        for point in ROUTE:
            await far_ws.send({"type": "location", **point})
            await asyncio.sleep(REPORT_EVERY_S)  # the rate the protocol allows, not an event
        await far_ws.nothing("error")  # every report was believed and let in
        await far_ws.send({"type": "availability", "available": True})
        await far_ws.next("availability")

        completed = await http.post(f"/v1/trips/{trip_id}/complete", headers=farther.headers)
        assert completed.status_code == 200, completed.text
        trip = completed.json()
        assert trip["status"] == "completed"

        distance_m = math.floor(
            sum(
                haversine_m(a["lat"], a["lon"], b["lat"], b["lon"])
                for a, b in zip(ROUTE, ROUTE[1:], strict=False)
            )
            + 0.5
        )
        duration_s = math.floor(
            (
                datetime.fromisoformat(trip["ended_at"])
                - datetime.fromisoformat(trip["started_at"])
            ).total_seconds()
            + 0.5
        )
        assert 600 <= duration_s <= 660
        assert trip["fare"] == {
            **agreement_fare(distance_m, duration_s),
            "currency": "CAD",
            "agreement_version": 1,
            "distance_m": distance_m,
            "duration_s": duration_s,
        }
        assert Decimal(trip["fare"]["total"]) > MINIMUM  # the meter, not the minimum, priced it
        pushed = await rider_ws.trip("completed")
        assert pushed["fare"] == trip["fare"]
        assert (await far_ws.trip("completed"))["fare"] == trip["fare"]

        # The rider saw every step, in order.
        statuses = [f["trip"]["status"] for f in rider_ws.seen if f["type"] == "trip"]
        assert statuses == ["requested", "assigned", "arrived", "in_progress", "completed"]


async def _online_driver(stack: AsyncExitStack, base_url: str, driver: Account) -> None:
    ws = await stack.enter_async_context(socket(base_url, "/v1/ws/driver", driver.token))
    await go_online(ws, NEAR)


async def test_two_app_instances_sharing_redis_deliver_across_workers(
    settings: Settings, engine: AsyncEngine, admin_headers: dict[str, str]
) -> None:
    first, second = create_app(settings), create_app(settings)
    async with (
        live_server(first) as first_url,
        live_server(second) as second_url,
        AsyncClient(base_url=first_url) as first_http,
        AsyncClient(base_url=second_url) as second_http,
        AsyncExitStack() as stack,
    ):
        rider = await make_rider(first_http)
        driver = await make_driver(second_http, admin_headers)
        # The rider's socket is on the first worker, the driver's on the second.
        rider_ws = await stack.enter_async_context(socket(first_url, "/v1/ws/rider", rider.token))
        driver_ws = await stack.enter_async_context(
            socket(second_url, "/v1/ws/driver", driver.token)
        )
        await go_online(driver_ws, NEAR)
        await second.state.locations.flush()

        # The request lands on the second worker; the first worker's matcher offers it.
        body = await consented(second_http, rider, {"pickup": DOWNTOWN, "dropoff": DROPOFF})
        requested = await second_http.post("/v1/trips", json=body, headers=rider.headers)
        assert requested.status_code == 201
        await rider_ws.trip("requested")
        await first.state.matcher.run_batch()
        offer = await driver_ws.next("offer")

        # Accepted through the first worker: the driver on the second hears of it, and so does
        # the rider on the first.
        accepted = await first_http.post(
            f"/v1/offers/{offer['offer_id']}/accept", headers=driver.headers
        )
        assert accepted.status_code == 200
        assert (await driver_ws.trip("assigned"))["id"] == requested.json()["id"]
        assert (await rider_ws.trip("assigned"))["driver_id"] == str(driver.id)

        # The driver's position, flushed by the second worker, reaches the rider on the first
        # (a believable move: 13 m).
        await go_online(driver_ws, {"lat": 45.5039, "lon": -73.5689})
        await second.state.locations.flush()
        live = await rider_ws.next("driver_location")
        assert (live["lat"], live["lon"]) == (45.5039, -73.5689)
