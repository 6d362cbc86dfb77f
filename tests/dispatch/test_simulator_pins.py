"""The simulated city exercises the PIN at pickup (server/simulator/curb.py): riders who ask for
one hand it to the driver who came, who starts the ride with it; the rest ride as before."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from coop.settings import Settings
from dispatch.trips.models import Trip, TripStatus
from dispatch.trips.pin import TripPin
from loadtests import invariants
from server.simulator.city import Simulation
from server.simulator.curb import Curb
from server.simulator.stats import CityStats
from tests.dispatch.test_simulator import FrameLog, city, service_url

__all__ = ["service_url"]  # the fixture, served to this module's tests


async def test_riders_who_ask_for_a_pin_hand_it_over_and_every_trip_completes(
    service_url: str, settings: Settings, session: AsyncSession, engine: AsyncEngine
) -> None:
    lines: list[str] = []
    log = FrameLog()
    config = city(
        service_url,
        settings,
        drivers=3,
        rate_per_min=120,
        max_requests=3,
        decline_rate=0.0,
        cancel_rate=0.0,
        rating_rate=0.0,
        pin_share=1.0,
    )
    stats = await asyncio.wait_for(Simulation(config, out=lines.append, observer=log).run(), 90)
    assert (stats.requests_sent, stats.completed) == (3, 3), lines[-1]
    assert (stats.pin_riders, stats.pins_given) == (3, 3), lines[-1]
    assert (stats.http_errors, stats.error_frames) == (0, 0)
    assert "PINs 3 given (3 riders ask)" in lines[-1]
    trips = (await session.scalars(select(Trip))).all()
    assert [trip.status for trip in trips] == [TripStatus.completed] * 3
    pins = (await session.scalars(select(TripPin))).all()
    # Each trip had its PIN, started with it (no try wasted), and none is kept after the start.
    assert sorted(str(p.trip_id) for p in pins) == sorted(str(t.id) for t in trips)
    assert all(p.pin is None and p.wrong_attempts == 0 for p in pins)
    assert all(p.rider_confirmed_at is None for p in pins)
    async with engine.connect() as connection:
        report = await invariants.check(connection)
    assert report.ok, report.lines()
    log.check_against_asyncapi()


async def test_without_pin_riders_the_city_rides_as_before(
    service_url: str, settings: Settings, session: AsyncSession
) -> None:
    config = city(
        service_url,
        settings,
        drivers=2,
        rate_per_min=120,
        max_requests=2,
        decline_rate=0.0,
        cancel_rate=0.0,
        rating_rate=0.0,
        pin_share=0.0,
    )
    stats = await asyncio.wait_for(Simulation(config, out=lambda _: None).run(), 90)
    assert (stats.completed, stats.pin_riders, stats.pins_given) == (2, 0, 0)
    assert (await session.scalars(select(TripPin))).all() == []


def test_the_curb_hears_a_pin_once_said_and_forgets_it() -> None:
    curb = Curb()
    assert curb.ask("t1") is None
    curb.tell("t1", "0427")
    assert curb.ask("t1") == "0427" and curb.ask("t2") is None
    curb.forget("t1")
    assert curb.ask("t1") is None


def test_the_summary_line_counts_pins() -> None:
    stats = CityStats(pin_riders=4, pins_given=3)
    assert "PINs 3 given (4 riders ask)" in stats.summary_line(10)
