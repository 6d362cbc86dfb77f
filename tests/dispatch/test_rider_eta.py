"""The rider's ETA over the socket: each `driver_location` says where the car is heading and the
service's estimate to get there, by the same travel-time model as the quote."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from coop.settings import Settings
from tests.builders import (
    DOWNTOWN,
    PLATEAU,
    Account,
    Served,
    assigned_trip,
    make_driver,
    make_rider,
    place_driver,
    serve,
    socket,
)

# About 2.2 km and 1.1 km from DOWNTOWN, on the way from the north.
FAR = {"lat": 45.5230, "lon": -73.5680}
HALFWAY = {"lat": 45.5130, "lon": -73.5680}


@pytest_asyncio.fixture
async def served(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Served]:
    async with serve(settings) as served:
        yield served


async def test_the_rider_is_told_the_cars_eta_to_the_pickup_then_to_the_destination(
    served: Served, admin_headers: dict[str, str]
) -> None:
    rider: Account = await make_rider(served.http)
    driver: Account = await make_driver(served.http, admin_headers)
    trip = await assigned_trip(served.app, served.http, rider, driver, at=FAR)
    async with socket(served.base_url, "/v1/ws/rider", rider.token) as ws:
        # On connecting: where the car is, and how long to the pickup.
        first = await ws.next("driver_location", timeout_s=5)
        assert (first["lat"], first["lon"], first["heading_to"]) == (
            FAR["lat"],
            FAR["lon"],
            "pickup",
        )
        await place_driver(served.app, driver.id, HALFWAY)
        await served.app.state.locations.flush()
        closer = await ws.next("driver_location", timeout_s=5)
        assert closer["heading_to"] == "pickup"
        # Half the way left: the estimate falls, and stays a drive (not zero, not the whole).
        assert 0 < closer["eta_s"] < first["eta_s"]
        assert 0.3 < closer["eta_s"] / first["eta_s"] < 0.7

        await place_driver(served.app, driver.id, DOWNTOWN)
        await served.app.state.locations.flush()
        there = await ws.next("driver_location", timeout_s=5)
        assert there["heading_to"] == "pickup" and there["eta_s"] < closer["eta_s"]
        for step in ("arrived", "start"):
            moved = await served.http.post(f"/v1/trips/{trip['id']}/{step}", headers=driver.headers)
            assert moved.status_code == 200, moved.text
        await place_driver(served.app, driver.id, DOWNTOWN)
        await served.app.state.locations.flush()
        riding = await ws.next("driver_location", timeout_s=5)
        # At the pickup, on the way: the estimate to the destination is the quote's duration
        # (the same model, the same hour; rounded to the nearest second rather than up).
        assert riding["heading_to"] == "destination"
        assert abs(riding["eta_s"] - trip["quote"]["duration_s"]) <= 1, (riding, trip["quote"])


async def test_the_drivers_own_socket_never_gets_the_riders_eta(
    served: Served, admin_headers: dict[str, str]
) -> None:
    rider: Account = await make_rider(served.http)
    driver: Account = await make_driver(served.http, admin_headers)
    await assigned_trip(served.app, served.http, rider, driver, at=PLATEAU)
    async with socket(served.base_url, "/v1/ws/driver", driver.token) as ws:
        await place_driver(served.app, driver.id, HALFWAY)
        await served.app.state.locations.flush()
        await ws.nothing("driver_location")
