"""The candidate search offers trips only to drivers the law lets carry riders today: every item
the jurisdiction requires recorded and valid, for the driver and the car (docs/jurisdiction.md),
from both sides of the search. Being unqualified never touches the member's status."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from drivers.models import Driver, DriverStatus
from server.simulator import registration
from tests.builders import (
    local_today,
    make_driver,
    make_rider,
    north,
    place_driver,
    request_trip,
    socket,
)


async def test_an_unqualified_driver_nearer_is_passed_over_for_a_qualified_one(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    search_side: str,
) -> None:
    rider = await make_rider(client)
    unregistered = await make_driver(client, admin_headers, name="Near", qualified=False)
    qualified = await make_driver(client, admin_headers, name="Far")
    await place_driver(app, unregistered.id, north(100))
    await request_trip(client, rider)
    report = await app.state.matcher.run_batch()
    assert (report.candidates, report.offers) == (0, [])
    await place_driver(app, qualified.id, north(3000))
    report = await app.state.matcher.run_batch()
    assert [offer.driver_id for offer in report.offers] == [qualified.id]
    status = await session.scalar(select(Driver.status).where(Driver.id == unregistered.id))
    assert status is DriverStatus.active


async def test_an_item_that_lapses_stops_offers_and_its_renewal_restores_them(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    search_side: str,
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    today = local_today()
    lapsed = {
        **registration.qualification(1, today),
        "authorization_expires_on": (today - timedelta(days=2)).isoformat(),
    }
    recorded = await client.put(
        f"/v1/drivers/{driver.id}/qualification", json=lapsed, headers=admin_headers
    )
    assert recorded.json()["missing"] == ["authorization"]
    await place_driver(app, driver.id, north(200))
    await request_trip(client, rider)
    assert (await app.state.matcher.run_batch()).offers == []
    # A car past its inspection is the same: the car is not qualified.
    renewed = registration.qualification(1, today)
    await client.put(f"/v1/drivers/{driver.id}/qualification", json=renewed, headers=admin_headers)
    old_car = registration.vehicle(1, today, plate="FXK 123", owner="Dana Driver")
    yesterday = (today - timedelta(days=1)).isoformat()
    old_car |= {"year": today.year - 6, "inspection_due_on": yesterday}
    await client.put(f"/v1/drivers/{driver.id}/vehicle", json=old_car, headers=admin_headers)
    assert (await app.state.matcher.run_batch()).offers == []
    old_car["inspection_due_on"] = (today + timedelta(days=300)).isoformat()
    await client.put(f"/v1/drivers/{driver.id}/vehicle", json=old_car, headers=admin_headers)
    assert [offer.driver_id for offer in (await app.state.matcher.run_batch()).offers] == [
        driver.id
    ]


async def test_a_driver_is_told_on_connecting_what_is_missing_or_lapses_soon(
    served_app: tuple[FastAPI, str], admin_headers: dict[str, str]
) -> None:
    app, base_url = served_app
    async with AsyncClient(base_url=base_url) as http:
        fine = await make_driver(http, admin_headers, name="Fine")
        soon = await make_driver(http, admin_headers, name="Soon")
        bare = await make_driver(http, admin_headers, name="Bare", qualified=False)
        today = local_today()
        lapsing = {
            **registration.qualification(2, today),
            "authorization_expires_on": (today + timedelta(days=5)).isoformat(),
        }
        put = await http.put(
            f"/v1/drivers/{soon.id}/qualification", json=lapsing, headers=admin_headers
        )
        assert put.status_code == 200
        async with socket(base_url, "/v1/ws/driver", soon.token) as ws:
            told = await ws.next("qualification")
            assert told["eligible"] is True and told["missing"] == []
            [item] = told["expiring"]
            assert (item["key"], item["urgent"]) == ("authorization", True)
            assert 4 <= item["days_left"] <= 6  # the law's day is Montréal's
        async with socket(base_url, "/v1/ws/driver", bare.token) as ws:
            told = await ws.next("qualification")
            assert told["eligible"] is False and len(told["missing"]) == 6
        async with socket(base_url, "/v1/ws/driver", fine.token) as ws:
            await ws.send({"type": "ping"})
            await ws.next("pong")  # every frame sent before it has arrived
            assert all(frame["type"] != "qualification" for frame in ws._unread)
