"""The trips' routes read the time from the app's one clock (`app.state.clock`, coop/clock.py) and
hand it to the services: every stamp of a trip's moves is the clock's."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import FastAPI
from httpx import AsyncClient

from coop.db import utcnow
from tests.builders import DOWNTOWN, assigned_trip, make_driver, make_rider


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


async def test_a_trips_moves_are_stamped_by_the_apps_clock(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    # Behind the system clock, yet within the founding agreement's max_wait_s (300 s) and
    # before the offer's deadline, which the matcher sets by the system clock.
    frozen = (utcnow() - timedelta(seconds=40)).replace(microsecond=0)
    app.state.clock = lambda: frozen
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip = await assigned_trip(app, client, rider, driver, at=DOWNTOWN)
    assert _at(trip["requested_at"]) == frozen
    assert _at(trip["matching_deadline_at"]) == frozen + timedelta(seconds=300)
    assert _at(trip["assigned_at"]) == frozen

    arrived = await client.post(f"/v1/trips/{trip['id']}/arrived", headers=driver.headers)
    assert arrived.status_code == 200, arrived.text
    assert _at(arrived.json()["arrived_at"]) == frozen

    started = await client.post(f"/v1/trips/{trip['id']}/start", headers=driver.headers)
    assert started.status_code == 200, started.text
    assert _at(started.json()["started_at"]) == frozen

    later = frozen + timedelta(seconds=5)
    app.state.clock = lambda: later
    done = await client.post(f"/v1/trips/{trip['id']}/complete", headers=driver.headers)
    assert done.status_code == 200, done.text
    assert _at(done.json()["ended_at"]) == later
    assert done.json()["fare"]["duration_s"] == 5


async def test_a_cancellation_is_stamped_by_the_apps_clock(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    frozen = (utcnow() - timedelta(seconds=40)).replace(microsecond=0)
    app.state.clock = lambda: frozen
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip = await assigned_trip(app, client, rider, driver, at=DOWNTOWN)
    cancelled = await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert _at(cancelled.json()["ended_at"]) == frozen
    # Cancelled at the very moment the driver accepted: inside the free period, by the clock.
    assert cancelled.json()["cancellation_fee"] == "0.00"
