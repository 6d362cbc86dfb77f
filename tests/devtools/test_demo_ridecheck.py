"""The demo's ride check (devtools/demo_ridecheck.py) against the real service with its
background tasks, as `make demo` starts it: a demo member takes the demo rider, parks mid-trip,
the ride check asks both parties, nobody answers, and the alert lands in the operators' queue
that /safety lists and /ops sounds for; then the car drives on and the trip completes.

The service's one clock is moved past the agreement's stop_alert_s and check_answer_s instead
of waiting seven minutes; the demo itself waits them out in real time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bargaining import service as bargaining_service
from coop.db import create_sessionmaker, utcnow
from coop.settings import Settings
from devtools.demo_accounts import DemoAccount, create_demo_accounts
from devtools.demo_ridecheck import park_mid_trip
from dispatch.safety import alerts
from dispatch.safety.ridecheck_models import RideCheck
from dispatch.trips.models import Trip, TripStatus
from server.app import create_app
from tests.builders import live_server, socket


class MovableClock:
    """The service's clock: real time, plus however far the test moved it."""

    def __init__(self) -> None:
        self.ahead = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.ahead


@dataclass
class Demo:
    app: FastAPI
    base_url: str
    clock: MovableClock
    accounts: list[DemoAccount]


@pytest_asyncio.fixture
async def demo(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Demo]:
    """The service with its matcher and ride-check sweep running, and the demo's accounts."""
    async with create_sessionmaker(engine)() as session:
        await bargaining_service.install_founding(session=session)
    app = create_app(settings.model_copy(update={"background_tasks": True}))
    clock = MovableClock()
    async with live_server(app) as base_url:
        app.state.clock = clock
        accounts = await asyncio.to_thread(create_demo_accounts, base_url, settings.admin_token)
        yield Demo(app, base_url, clock, accounts)


def _one(accounts: list[DemoAccount], role: str) -> DemoAccount:
    return next(a for a in accounts if a.role == role)


async def test_the_demos_parked_trip_fires_the_ride_check_and_reaches_the_operators(
    demo: Demo, settings: Settings, session: AsyncSession
) -> None:
    rider = _one(demo.accounts, "rider")
    member = [a for a in demo.accounts if a.role == "driver-member"][-1]
    parked = asyncio.Event()
    async with socket(demo.base_url, "/v1/ws/rider", rider.token) as rider_socket:
        drive = asyncio.create_task(
            park_mid_trip(
                demo.base_url,
                member=member,
                rider=rider,
                admin_token=settings.admin_token,
                parked=parked.set,
                report_every_s=0.3,
                poll_every_s=0.3,
                limit_s=90.0,
            )
        )
        await asyncio.wait_for(parked.wait(), 60)
        await asyncio.sleep(1.0)  # a first position of the stop is in
        # Not yet: a stop shorter than the agreement's stop_alert_s (300 s) asks nobody.
        demo.clock.ahead = timedelta(seconds=200)
        await rider_socket.nothing("safety_check", within_s=7.0)
        demo.clock.ahead = timedelta(seconds=301)
        asked = await rider_socket.next("safety_check", timeout_s=30.0)
        assert asked["detector"] == "stopped" and "answered" not in asked
        assert not drive.done()  # still parked: nobody answered, no person told yet
        # Nobody answers within check_answer_s (120 s): the check goes to a person.
        demo.clock.ahead = timedelta(seconds=301 + 121)
        run = await asyncio.wait_for(drive, 60)

    assert run.asked is not None and run.asked["check_id"] == asked["check_id"]
    assert run.alert is not None and run.alert["kind"] == "ride_check"
    assert run.alert["trip_id"] == run.trip_id == asked["trip_id"]
    assert run.completed and "waits at /safety" in run.says()
    trip = await session.get(Trip, uuid.UUID(asked["trip_id"]), populate_existing=True)
    assert trip is not None and trip.status is TripStatus.completed
    [check] = (await session.scalars(select(RideCheck).where(RideCheck.trip_id == trip.id))).all()
    assert (check.detector, check.outcome) == ("stopped", "unanswered")
    # What /ops sounds for: the alert nobody has acknowledged yet.
    assert (await alerts.alarm(session)).unacknowledged == 1
