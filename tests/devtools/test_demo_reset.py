"""`make demo` a second time on the same data folder: what the first run left open is closed
as the service closes it (audited), and the seeding then makes its trips, ratings and appeal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bargaining import service as bargaining_service
from coop.audit import AuditEntry
from coop.db import create_sessionmaker, utcnow
from coop.settings import Settings
from devtools.demo_accounts import create_demo_accounts
from devtools.demo_reset import AUDIT_KIND, close_left_open
from devtools.demo_seed import SPOTS, seed_demo_history
from dispatch.trips.models import Trip, TripStatus
from server.app import create_app
from tests.builders import (
    DOWNTOWN,
    assigned_trip,
    live_server,
    make_driver,
    make_rider,
    place_driver,
    request_trip,
)


async def test_what_a_previous_run_left_open_is_closed_as_the_service_closes_it(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    waiting_rider = await make_rider(client, name="Waits")
    assigned_rider = await make_rider(client, name="Assigned")
    riding_rider = await make_rider(client, name="Rides")
    gone = await make_driver(client, admin_headers, name="Gone")
    driving = await make_driver(client, admin_headers, name="Driving")
    assigned = await assigned_trip(app, client, assigned_rider, gone)
    riding = await assigned_trip(app, client, riding_rider, driving)
    for step in ("arrived", "start"):
        response = await client.post(f"/v1/trips/{riding['id']}/{step}", headers=driving.headers)
        assert response.status_code == 200, response.text
    await place_driver(app, driving.id, {"lat": DOWNTOWN["lat"] + 0.004, "lon": DOWNTOWN["lon"]})
    waiting = await request_trip(client, waiting_rider)

    closed = await close_left_open(sessionmaker=sessionmaker, now=utcnow())
    assert closed.by_status == {"assigned": 1, "in_progress": 1, "requested": 1}
    assert closed.line() == (
        "demo: closed what a previous run left open (1 assigned, 1 in_progress, 1 requested)"
    )

    views = {
        trip["id"]: (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
        for trip, rider in (
            (waiting, waiting_rider),
            (assigned, assigned_rider),
            (riding, riding_rider),
        )
    }
    # The request: called off by its rider, free (no driver had accepted it).
    assert views[waiting["id"]]["status"] == "cancelled"
    assert views[waiting["id"]]["cancelled_by"] == "rider"
    assert views[waiting["id"]]["cancellation_fee"] in (None, "0.00")
    # The driver who went away called theirs off: the rider pays nothing.
    assert views[assigned["id"]]["status"] == "cancelled"
    assert views[assigned["id"]]["cancelled_by"] == "driver"
    assert views[assigned["id"]]["cancellation_fee"] in (None, "0.00")
    # The ride under way: completed, metered to the last position received, for review.
    assert views[riding["id"]]["status"] == "completed"
    assert views[riding["id"]]["fare"] is not None

    entries = (await session.scalars(select(AuditEntry).where(AuditEntry.kind == AUDIT_KIND))).all()
    assert {entry.subject for entry in entries} == {
        f"trip:{trip['id']}" for trip in (waiting, assigned, riding)
    }
    by_subject = {entry.subject: entry.content for entry in entries}
    assert by_subject[f"trip:{riding['id']}"]["closed_as"] == "completed"
    assert by_subject[f"trip:{riding['id']}"]["by"] == "service"
    trip = await session.get(Trip, riding["id"])
    assert trip is not None and trip.timed_out is not None

    # Idempotent: a third run finds nothing to close.
    again = await close_left_open(sessionmaker=sessionmaker, now=utcnow())
    assert again.total == 0 and again.line() == "demo: nothing left open by a previous run"


# --- the second run's seeding, against a real service ------------------------------------------


@pytest_asyncio.fixture
async def running(settings: Settings, engine: AsyncEngine) -> AsyncIterator[tuple[FastAPI, str]]:
    """The service with its matcher running, as `make demo` starts it."""
    async with create_sessionmaker(engine)() as session:
        await bargaining_service.install_founding(session=session)
    app = create_app(settings.model_copy(update={"background_tasks": True}))
    async with live_server(app) as base_url:
        yield app, base_url


async def test_the_second_runs_seeding_is_not_offered_the_first_runs_request(
    running: tuple[FastAPI, str],
    settings: Settings,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    _app, base_url = running
    # The first run's rider asked for a ride where a seeded member waits; then the demo stopped.
    async with AsyncClient(base_url=base_url) as http:
        left_behind = await make_rider(http, name="First run's rider")
        pickup = {"lat": SPOTS[0][0] + 0.0004, "lon": SPOTS[0][1]}
        stale = await request_trip(
            http,
            left_behind,
            pickup=pickup,
            dropoff={"lat": pickup["lat"] + 0.003, "lon": pickup["lon"]},
        )

    closed = await close_left_open(sessionmaker=sessionmaker, now=utcnow())
    assert closed.by_status == {"requested": 1}

    accounts = await asyncio.to_thread(create_demo_accounts, base_url, settings.admin_token)
    line = await asyncio.to_thread(seed_demo_history, base_url, accounts, timeout_s=60.0)
    assert line == (
        "demo: 3 members drove a first trip; 3 ratings, 1 appeal waiting at /review; "
        "1 SOS waiting at /safety"
    )
    stale_trip = await session.get(Trip, stale["id"], populate_existing=True)
    assert stale_trip is not None and stale_trip.status is TripStatus.cancelled
    assert stale_trip.driver_id is None
