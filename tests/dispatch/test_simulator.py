"""The simulated city: its pure movement model and bookkeeping, then whole runs against a real
service (uvicorn on a free port, the real PostgreSQL/PostGIS and Redis, the matcher running).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from geoalchemy2.shape import from_shape
from httpx import AsyncClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from shapely.geometry import Point as ShapelyPoint
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bargaining import service as bargaining_service
from bargaining.terms import load_founding_terms
from coop.db import create_sessionmaker, utcnow
from coop.geo import ServiceArea
from coop.settings import PACKAGE_DIR, Settings
from dispatch.trips.models import Offer, OfferStatus, Trip, TripStatus
from dispatch.trips.pin import TripPin
from loadtests import invariants
from loadtests.run import locust_command
from server import asyncapi
from server.app import create_app
from server.simulator.agents import OVERLOADED_HOLD_S, ReportPace
from server.simulator.city import Simulation, SimulationError
from server.simulator.client import parse_frame, ws_url
from server.simulator.config import (
    SimulationConfig,
    accepts_offer,
    rating_for,
    rider_patience_s,
)
from server.simulator.curb import Curb
from server.simulator.movement import (
    DOWNTOWN_MONTREAL,
    MONTREAL_GRID_BEARING_DEG,
    Car,
    Point,
    bearing_deg,
    distance_m,
    grid_route,
    move_towards,
    offset,
    on_land,
    poisson_gap_s,
    random_destination,
    random_point_in,
    random_point_near,
)
from server.simulator.stats import CityStats
from tests.builders import live_server, make_driver, make_rider

MONTREAL = ServiceArea.from_file(PACKAGE_DIR / "data" / "montreal.geojson")
DOWNTOWN = Point(*DOWNTOWN_MONTREAL)

# Points within ~6 km of downtown, on the island.
near_downtown = st.builds(
    lambda north, east: offset(DOWNTOWN, north_m=north, east_m=east),
    st.floats(-4000, 6000),
    st.floats(-6000, 3000),
).filter(lambda p: MONTREAL.contains(p.lat, p.lon))


def angle_gap_deg(a: float, b: float) -> float:
    """The smallest angle between two bearings, modulo a right angle (grid lines are 4-fold)."""
    gap = (a - b) % 90.0
    return min(gap, 90.0 - gap)


# --- movement ---------------------------------------------------------------------------------


def test_offset_moves_by_the_metres_asked() -> None:
    moved = offset(DOWNTOWN, north_m=300, east_m=400)
    assert distance_m(DOWNTOWN, moved) == pytest.approx(500, rel=1e-3)
    assert bearing_deg(DOWNTOWN, moved) == pytest.approx(
        math.degrees(math.atan2(400, 300)), abs=0.1
    )


def test_move_towards_stops_at_the_target() -> None:
    target = offset(DOWNTOWN, north_m=100, east_m=0)
    halfway = move_towards(DOWNTOWN, target, 50)
    assert distance_m(DOWNTOWN, halfway) == pytest.approx(50, rel=1e-3)
    assert move_towards(DOWNTOWN, target, 500) == target


@hypothesis_settings(max_examples=60, deadline=None)
@given(start=near_downtown, end=near_downtown, bearing=st.sampled_from([0.0, -35.0, 20.0]))
def test_grid_routes_follow_the_grid_and_stay_on_the_island(
    start: Point, end: Point, bearing: float
) -> None:
    route = grid_route(start, end, area=MONTREAL, grid_bearing_deg=bearing)
    assert route[-1] == end
    assert 1 <= len(route) <= 2
    # Around downtown a route on land always exists, and is the one taken.
    for a, b in zip([start, *route], route, strict=False):
        assert on_land(MONTREAL, a, b)
    if len(route) == 2:
        corner = route[0]
        assert MONTREAL.contains(corner.lat, corner.lon)
        # Both legs run along grid lines, and an L is never shorter than the straight line.
        assert angle_gap_deg(bearing_deg(start, corner), bearing) < 0.5
        assert angle_gap_deg(bearing_deg(corner, end), bearing) < 0.5
        legs = distance_m(start, corner) + distance_m(corner, end)
        assert legs >= distance_m(start, end) - 1.0
        # At most a diagonal's worth longer (a flat projection, hence the small tolerance).
        assert legs <= distance_m(start, end) * math.sqrt(2) * 1.002 + 1.0


def test_an_l_route_turns_at_the_corner_of_a_north_south_grid() -> None:
    end = offset(DOWNTOWN, north_m=1000, east_m=-500)
    corner, last = grid_route(DOWNTOWN, end, area=MONTREAL, grid_bearing_deg=0.0)
    assert last == end
    assert corner.lat == pytest.approx(end.lat, abs=1e-6)
    assert corner.lon == pytest.approx(DOWNTOWN.lon, abs=1e-6)


def test_a_route_whose_corners_are_in_the_water_goes_straight() -> None:
    # A narrow strip running north-east: with a north-south grid, both corners of a trip along
    # the strip fall outside it, so the car takes the straight line.
    from shapely.geometry import Polygon

    strip = ServiceArea(
        "strip", Polygon([(-73.60, 45.50), (-73.59, 45.50), (-73.49, 45.60), (-73.50, 45.60)])
    )
    start, end = Point(45.51, -73.585), Point(45.59, -73.505)
    assert strip.contains(start.lat, start.lon) and strip.contains(end.lat, end.lon)
    assert grid_route(start, end, area=strip, grid_bearing_deg=0.0) == [end]
    # Rotated to the strip's own direction, the grid runs along it: straight too, as one leg.
    assert grid_route(start, end, area=strip, grid_bearing_deg=bearing_deg(start, end)) == [end]


@hypothesis_settings(max_examples=40, deadline=None)
@given(
    end=near_downtown,
    speed=st.floats(8, 12),
    ticks=st.lists(st.floats(0.1, 30), min_size=1, max_size=40),
)
def test_a_car_covers_speed_times_time_until_it_arrives(
    end: Point, speed: float, ticks: list[float]
) -> None:
    car = Car(position=DOWNTOWN, speed_mps=speed)
    car.drive_to(end, area=MONTREAL, grid_bearing_deg=MONTREAL_GRID_BEARING_DEG)
    route_m = sum(
        distance_m(a, b) for a, b in zip([DOWNTOWN, *car.route], list(car.route), strict=False)
    )
    for seconds in ticks:
        before = car.odometer_m
        covered = car.advance(seconds)
        assert covered <= speed * seconds + 1e-6
        if not car.arrived:
            assert covered == pytest.approx(speed * seconds, rel=1e-6, abs=1e-6)
        assert car.odometer_m == pytest.approx(before + covered)
    if car.arrived:
        assert car.position == end
        assert car.odometer_m == pytest.approx(route_m, rel=1e-3, abs=2.0)
    car.advance(10_000)
    assert car.arrived and car.position == end
    assert car.advance(5) == 0


def test_random_points_are_inside_the_area() -> None:
    rng = random.Random(7)
    for _ in range(300):
        near = random_point_near(rng, MONTREAL, center=DOWNTOWN, spread_m=4000)
        assert MONTREAL.contains(near.lat, near.lon)
        anywhere = random_point_in(rng, MONTREAL)
        assert MONTREAL.contains(anywhere.lat, anywhere.lon)
        there = random_destination(rng, MONTREAL, near, min_m=1000, max_m=8000)
        assert MONTREAL.contains(there.lat, there.lon)


def test_destinations_keep_to_the_requested_range() -> None:
    rng = random.Random(11)
    reaches = [
        distance_m(DOWNTOWN, random_destination(rng, MONTREAL, DOWNTOWN, min_m=1000, max_m=3000))
        for _ in range(300)
    ]
    assert min(reaches) >= 1000 * 0.99
    assert max(reaches) <= 3000 * 1.01


def test_random_destination_rejects_a_backwards_range() -> None:
    with pytest.raises(ValueError):
        random_destination(random.Random(1), MONTREAL, DOWNTOWN, min_m=500, max_m=100)


def test_poisson_gaps_average_one_over_the_rate() -> None:
    rng = random.Random(3)
    gaps = [poisson_gap_s(rng, 0.5) for _ in range(20_000)]
    assert sum(gaps) / len(gaps) == pytest.approx(2.0, rel=0.05)
    assert min(gaps) >= 0
    with pytest.raises(ValueError):
        poisson_gap_s(rng, 0)


# --- behaviour and configuration --------------------------------------------------------------


def test_drivers_decline_about_as_often_as_configured() -> None:
    rng = random.Random(5)
    accepted = sum(accepts_offer(rng, 0.1) for _ in range(10_000))
    assert 8_800 < accepted < 9_200
    assert all(accepts_offer(rng, 0.0) for _ in range(100))
    assert not any(accepts_offer(rng, 1.0) for _ in range(100))


def test_riders_cancel_about_as_often_as_configured() -> None:
    rng = random.Random(9)
    config = SimulationConfig(cancel_rate=0.25, patience_min_s=10, patience_max_s=20)
    patience = [rider_patience_s(rng, config) for _ in range(4_000)]
    cancelling = [value for value in patience if value is not None]
    assert 900 < len(cancelling) < 1_100
    assert all(10 <= value <= 20 for value in cancelling)


def test_ratings_are_what_the_rating_endpoint_accepts() -> None:
    from reputation.schemas import RatingIn

    rng = random.Random(13)
    ratings = [rating_for(rng) for _ in range(500)]
    for rating in ratings:
        RatingIn.model_validate(rating)
    assert {rating["stars"] for rating in ratings} == {1, 2, 3, 4, 5}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"speedup": 0}, "speedup"),
        ({"rate_per_min": -1}, "rate"),
        ({"decline_rate": 1.5}, "decline rate"),
        ({"trip_min_m": 5000, "trip_max_m": 1000}, "trip_min_m"),
        ({"drivers": -3}, "drivers"),
        ({"duration_s": 0}, "duration"),
    ],
)
def test_bad_configuration_is_refused_by_name(overrides: dict[str, float], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        SimulationConfig(**overrides)  # type: ignore[arg-type]


def test_frames_never_come_faster_than_the_floor() -> None:
    config = SimulationConfig(speedup=100, min_frame_interval_s=0.2)
    assert config.frame_interval_s(busy=False) == 0.2
    slow = SimulationConfig(speedup=1)
    assert slow.frame_interval_s(busy=False) == 4.0
    assert slow.frame_interval_s(busy=True) == 2.0


def test_a_driver_reports_no_faster_than_an_overloaded_service_asks() -> None:
    now = [100.0]
    pace = ReportPace(clock=lambda: now[0])
    assert pace.gap_s(0.5) == 0.5
    ask = {"type": "error", "code": "overloaded", "message": "catching up"}
    assert pace.asked({**ask, "report_every_ms": 4000})
    assert pace.gap_s(0.5) == 4.0
    assert pace.gap_s(6.0) == 6.0  # never faster than it would have anyway
    now[0] += OVERLOADED_HOLD_S - 0.1
    assert pace.gap_s(0.5) == 4.0
    now[0] += 0.1  # the ask lapses unless repeated
    assert pace.gap_s(0.5) == 0.5
    for bad in (
        {},
        {"report_every_ms": "soon"},
        {"report_every_ms": -5},
        {"report_every_ms": True},
    ):
        assert not pace.asked({**ask, **bad})
    assert not pace.asked({"type": "error", "code": "rate_limited", "report_every_ms": 4000})
    assert pace.gap_s(0.5) == 0.5


def test_websocket_addresses_follow_the_base_url() -> None:
    assert ws_url("http://127.0.0.1:8000", "/v1/ws/driver") == "ws://127.0.0.1:8000/v1/ws/driver"
    assert ws_url("https://coop.example/api/", "/v1/ws/rider") == (
        "wss://coop.example/api/v1/ws/rider"
    )
    with pytest.raises(ValueError):
        ws_url("ftp://coop.example", "/v1/ws/rider")


def test_frames_without_a_type_are_not_frames() -> None:
    assert parse_frame('{"type": "ping"}') == {"type": "ping"}
    assert parse_frame("[1, 2]") is None
    assert parse_frame('{"kind": "ping"}') is None
    assert parse_frame("not json") is None


# --- bookkeeping ------------------------------------------------------------------------------


def test_offer_latency_is_measured_whichever_side_reports_first() -> None:
    stats = CityStats()
    stats.trip_requested("a", at=10.0)
    stats.offer_received("a", at=12.5)
    stats.offer_received("b", at=20.0)  # the driver heard before the rider read its answer
    stats.trip_requested("b", at=19.0)
    stats.offer_received("a", at=30.0)  # a second offer (after a decline) is not a new latency
    assert sorted(stats.offer_latencies_s) == [1.0, 2.5]
    assert stats.median_offer_latency_s() == pytest.approx(1.75)
    assert stats.offers_received == 3


def test_a_trip_ends_once_in_the_counts() -> None:
    stats = CityStats()
    stats.trip_requested("a", at=0.0)
    stats.trip_requested("b", at=0.0)
    stats.trip_requested("c", at=0.0)
    assert stats.open_requests == 3
    stats.trip_status("a", "assigned")
    stats.trip_status("b", "cancelled")
    stats.trip_status("b", "cancelled")  # a push and a poll both say so
    stats.trip_status("b", "requested")  # a stale frame cannot reopen it
    assert (stats.open_requests, stats.on_trip, stats.cancelled) == (1, 1, 1)
    stats.trip_status("a", "completed")
    stats.trip_status("c", "unfulfilled")
    assert (stats.completed, stats.cancelled, stats.unfulfilled, stats.finished) == (1, 1, 1, 3)
    assert stats.open_requests == 0 and stats.on_trip == 0


def test_the_summary_line_says_what_the_issue_asks() -> None:
    stats = CityStats(drivers_total=50, drivers_online=48, drivers_on_trip=2)
    stats.trip_requested("a", at=0.0)
    stats.offer_received("a", at=1.2)
    stats.trip_status("a", "completed")
    stats.trip_requested("b", at=3.0)
    line = stats.summary_line(elapsed_s=75)
    assert line.startswith("[01:15] ")
    for part in (
        "drivers online 48/50",
        "open requests 1",
        "on trip 2",
        "median offer latency 1.2 s",
        "trips completed 1, cancelled 0, unfulfilled 0",
        "pay on open statements 0.00 (0 drivers)",
    ):
        assert part in line
    assert "median offer latency -" in CityStats().summary_line(0)


# --- whole runs against a real service ----------------------------------------------------------


@pytest_asyncio.fixture
async def service_url(settings: Settings, engine: AsyncEngine) -> AsyncIterator[str]:
    """The app with its background work on (the matcher must run), served on a free port.

    Simulated time runs up to 30 times faster than real time, so the city's agreement believes
    moves of up to 1,000 km/h (the most the schema allows) instead of the founding 130: the
    simulator keeps its cars under whatever the agreement in force says."""
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        await bargaining_service.install_founding(session=session)
    async with sessionmaker() as session:
        founding = load_founding_terms()
        fast = founding.model_copy(
            update={
                "dispatch": founding.dispatch.model_copy(update={"max_plausible_speed_kmh": 1000})
            }
        )
        await bargaining_service._add_version(
            session=session, terms=fast, effective_from=utcnow(), proposal_id=None
        )
        await session.commit()
    app = create_app(settings.model_copy(update={"background_tasks": True}))
    async with live_server(app) as base_url:
        yield base_url


def city(service_url: str, settings: Settings, **overrides: Any) -> SimulationConfig:
    """A small, quick city downtown: short trips, a fast clock, frequent summaries."""
    base: dict[str, Any] = {
        "base_url": service_url,
        "admin_token": settings.admin_token,
        "seed": 7,
        "spread_m": 600.0,
        "trip_min_m": 300.0,
        "trip_max_m": 800.0,
        "speedup": 30.0,
        "accessible_share": 0.0,
        "wheelchair_share": 0.0,
        "think_min_s": 0.5,
        "think_max_s": 1.0,
        "boarding_min_s": 5.0,
        "boarding_max_s": 10.0,
        "summary_interval_s": 1.0,
    }
    return SimulationConfig(**{**base, **overrides})


class FrameLog:
    """Every frame the simulated apps received, checked against the AsyncAPI document."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, channel: str, frame: dict[str, Any]) -> None:
        self.frames.append((channel, frame))

    def types(self, channel: str) -> set[str]:
        return {frame["type"] for seen, frame in self.frames if seen == channel}

    def check_against_asyncapi(self) -> None:
        document = asyncapi.document()
        models = {message.name: message.model for message in asyncapi.MESSAGES}
        for channel, received in self.frames:
            # Every frame the service sends carries its socket's `seq` besides the payload.
            assert isinstance(received.get("seq"), int) and received["seq"] >= 1, received
            frame = {key: value for key, value in received.items() if key != "seq"}
            assert frame["type"] in document["channels"][channel]["messages"], (channel, frame)
            models[frame["type"]].model_validate(frame)


async def test_a_small_city_completes_every_trip_end_to_end(
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
        rating_rate=1.0,
    )
    simulation = Simulation(config, out=lines.append, observer=log)
    stats = await asyncio.wait_for(simulation.run(), timeout=90)

    assert (stats.requests_sent, stats.completed, stats.finished) == (3, 3, 3), lines[-1]
    assert (stats.requests_failed, stats.http_errors, stats.error_frames) == (0, 0, 0)
    # The cars keep to the agreement's speed: at most a few positions bunched by a busy
    # machine are refused.
    assert stats.location_refusals <= max(2, stats.location_frames // 20), stats
    assert stats.offers_accepted == 3 and stats.offers_declined == 0
    assert len(stats.offer_latencies_s) == 3
    assert all(0 <= latency < 60 for latency in stats.offer_latencies_s)
    assert stats.ratings_sent == 3
    assert stats.drivers_total == 3 and stats.drivers_online == 0  # all disconnected at the end
    assert stats.drivers_on_trip == 0
    assert stats.location_frames > 0 and stats.driver_location_frames > 0
    assert "trips completed 3, cancelled 0, unfulfilled 0" in lines[-1]
    assert "drivers online" in lines[0]
    # The busiest driver's statement is printed before the last summary, line by line.
    [heading] = [line for line in lines if line.startswith("pay statement of simulated driver")]
    printed = lines[lines.index(heading) + 1 : -1]
    assert any(p.startswith("  totals: ") for p in printed)
    assert sum(p.startswith("  trip ") for p in printed) >= 1
    # Every line of the output fits a terminal of 80 columns.
    assert all(len(line) <= 80 for block in lines for line in block.split("\n")), lines

    trips = (await session.scalars(select(Trip))).all()
    assert len(trips) == 3
    for trip in trips:
        assert trip.status is TripStatus.completed
        assert trip.fare_total is not None and trip.fare_total > 0
        assert trip.distance_m is not None and trip.distance_m > 0  # metered from positions
    async with engine.connect() as connection:
        report = await invariants.check(connection)
    assert report.ok, report.lines()

    log.check_against_asyncapi()
    assert {"offer", "trip"} <= log.types("driver")
    assert {"trip", "driver_location"} <= log.types("rider")


async def test_a_declined_offer_and_a_rider_who_gives_up(
    service_url: str, settings: Settings, session: AsyncSession, engine: AsyncEngine
) -> None:
    lines: list[str] = []
    log = FrameLog()
    # One driver who declines everything; one rider who cancels after a while. The declining
    # driver is never offered the trip again, so the rider's cancel ends it.
    config = city(
        service_url,
        settings,
        drivers=1,
        rate_per_min=600,
        max_requests=1,
        speedup=1.0,
        decline_rate=1.0,
        cancel_rate=1.0,
        patience_min_s=10.0,
        patience_max_s=12.0,
        think_min_s=0.1,
        think_max_s=0.3,
    )
    stats = await asyncio.wait_for(
        Simulation(config, out=lines.append, observer=log).run(), timeout=60
    )

    assert (stats.offers_received, stats.offers_declined, stats.offers_accepted) == (1, 1, 0)
    assert (stats.cancels_sent, stats.cancelled, stats.completed) == (1, 1, 0), lines[-1]
    assert (stats.http_errors, stats.error_frames) == (0, 0)
    assert stats.location_refusals <= max(2, stats.location_frames // 20), stats
    trip = (await session.scalars(select(Trip))).one()
    assert trip.status is TripStatus.cancelled and trip.driver_id is None
    offer = (await session.scalars(select(Offer))).one()
    assert offer.status is OfferStatus.declined
    async with engine.connect() as connection:
        report = await invariants.check(connection)
    assert report.ok, report.lines()
    log.check_against_asyncapi()


async def test_the_simulator_says_when_the_admin_token_is_refused(
    service_url: str, settings: Settings
) -> None:
    config = city(service_url, settings, drivers=1, admin_token="not-the-admin-token-at-all")
    with pytest.raises(SimulationError, match="admin token"):
        await Simulation(config, out=lambda _: None).run()


async def test_the_simulator_says_when_the_service_is_unreachable(settings: Settings) -> None:
    config = city("http://127.0.0.1:9", settings, drivers=1)
    with pytest.raises(SimulationError, match="cannot reach"):
        await Simulation(config, out=lambda _: None).run()


# --- the load test's invariants and its Locust scenarios ----------------------------------------


async def _trip(
    session: AsyncSession,
    *,
    rider_id: Any,
    driver_id: Any | None,
    status: TripStatus,
    requested_at: datetime,
    assigned_at: datetime | None = None,
    ended_at: datetime | None = None,
) -> Trip:
    """A trip row written directly, to build states the service itself would never produce."""
    completed = status is TripStatus.completed
    trip = Trip(
        id=uuid.uuid4(),
        rider_id=rider_id,
        driver_id=driver_id,
        status=status,
        region="test",
        pickup=from_shape(ShapelyPoint(-73.5673, 45.5017), srid=4326),
        dropoff=from_shape(ShapelyPoint(-73.58, 45.5225), srid=4326),
        service_class="standard",
        agreement_version=1,
        currency="CAD",
        quote={"total": "9.00"},
        requested_at=requested_at,
        matching_deadline_at=requested_at + timedelta(seconds=300),
        assigned_at=assigned_at,
        arrived_at=assigned_at,
        started_at=assigned_at,
        ended_at=ended_at,
        fare={"total": "9.00"} if completed else None,
        fare_total=Decimal("9.00") if completed else None,
    )
    session.add(trip)
    await session.flush()
    if assigned_at is not None and driver_id is not None:
        session.add(
            Offer(
                trip_id=trip.id,
                driver_id=driver_id,
                status=OfferStatus.accepted,
                expires_at=assigned_at,
                pickup_distance_m=100,
                pickup_eta_s=20,
                idle_s=0,
                cost=20,
                why="test",
            )
        )
    return trip


async def test_invariants_find_a_driver_who_held_two_trips_at_once(
    client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession, engine: AsyncEngine
) -> None:
    driver = await make_driver(client, admin_headers)
    riders = [await make_rider(client, name=f"Rider {n}") for n in range(3)]
    t0 = datetime.now(UTC) - timedelta(hours=1)
    minute = timedelta(minutes=1)
    first = await _trip(
        session,
        rider_id=riders[0].id,
        driver_id=driver.id,
        status=TripStatus.completed,
        requested_at=t0,
        assigned_at=t0 + minute,
        ended_at=t0 + 20 * minute,
    )
    # Back to back is fine: the next trip is assigned when the first one ends.
    await _trip(
        session,
        rider_id=riders[1].id,
        driver_id=driver.id,
        status=TripStatus.completed,
        requested_at=t0 + 19 * minute,
        assigned_at=t0 + 20 * minute,
        ended_at=t0 + 30 * minute,
    )
    await session.commit()
    async with engine.connect() as connection:
        clean = await invariants.check(connection)
    assert clean.ok, clean.lines()
    assert clean.by_status == {"completed": 2}

    overlapping = await _trip(
        session,
        rider_id=riders[2].id,
        driver_id=driver.id,
        status=TripStatus.completed,
        requested_at=t0 + 4 * minute,
        assigned_at=t0 + 5 * minute,  # while the first trip was still going
        ended_at=t0 + 8 * minute,
    )
    await session.commit()
    async with engine.connect() as connection:
        report = await invariants.check(connection)
    assert not report.ok
    assert report.violations["driver_overlap"] == [f"{overlapping.id} {driver.id}"]
    assert "INVARIANTS VIOLATED" in report.lines()[-1]
    assert all(not found for name, found in report.violations.items() if name != "driver_overlap")
    assert first.id != overlapping.id


async def test_invariants_find_stale_requests_and_half_written_endings(
    client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession, engine: AsyncEngine
) -> None:
    riders = [await make_rider(client, name=f"Rider {n}") for n in range(2)]
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    stale = await _trip(
        session,
        rider_id=riders[0].id,
        driver_id=None,
        status=TripStatus.requested,
        requested_at=long_ago,
    )
    half = await _trip(
        session,
        rider_id=riders[1].id,
        driver_id=None,
        status=TripStatus.unfulfilled,
        requested_at=long_ago,
        ended_at=None,  # ended, but no end recorded
    )
    await session.commit()
    async with engine.connect() as connection:
        report = await invariants.check(connection)
        recent = await invariants.check(connection, since=datetime.now(UTC) - timedelta(hours=1))
    assert [row.split()[0] for row in report.violations["stale_request"]] == [str(stale.id)]
    assert [row.split()[0] for row in report.violations["terminal_fields"]] == [str(half.id)]
    assert recent.ok and recent.trips == 0  # both are older than the window checked


async def _load_seen(engine: AsyncEngine) -> bool:
    """Whether the database shows what the load test's checks need: a rider's trip (so its
    quote and sign-up came before) and a driver's stored position (so a driver signed up,
    connected and sent locations)."""
    async with engine.connect() as connection:
        trips = await connection.scalar(text("SELECT count(*) FROM trip"))
        positions = await connection.scalar(text("SELECT count(*) FROM location_driver_position"))
    return bool(trips) and bool(positions)


# Locust's start-up and its users' sign-ups take a few seconds on an idle machine and much
# longer on a loaded one: the run lasts until the service has seen what is checked (bounded),
# never a fixed time that a slow machine spends on registrations alone.
LOAD_SEEN_WITHIN_S = 150.0


@pytest.mark.timeout(300)
async def test_the_locust_scenarios_run_against_a_real_service(
    service_url: str, settings: Settings, session: AsyncSession, engine: AsyncEngine, tmp_path: Path
) -> None:
    env = dict(
        os.environ,
        COOP_ADMIN_TOKEN=settings.admin_token,
        COOP_LOAD_SPEEDUP="30",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    # The run time is only a bound: the test stops Locust (SIGTERM: it stops its users, waiting
    # up to the stop timeout, and writes its final figures) once the service has seen the load.
    command = locust_command(
        host=service_url,
        users=4,
        spawn_rate=4,
        run_time=f"{LOAD_SEEN_WITHIN_S + 30:.0f}s",
        stop_timeout_s=3,
    )
    process = await asyncio.create_subprocess_exec(
        *command,
        "--json-file",
        str(tmp_path / "load"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    running = asyncio.create_task(process.communicate())
    try:
        deadline = asyncio.get_running_loop().time() + LOAD_SEEN_WITHIN_S
        while not running.done() and not await _load_seen(engine):
            assert asyncio.get_running_loop().time() < deadline, (
                f"the service saw no trip and no driver position in {LOAD_SEEN_WITHIN_S:g} s"
            )
            await asyncio.sleep(0.25)
        if not running.done():
            process.terminate()
        output, _ = await asyncio.wait_for(running, timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text_out = output.decode(errors="replace")
    assert process.returncode == 0, text_out[-3000:]

    entries = json.loads((tmp_path / "load.json").read_text())
    rows = {(entry["method"], entry["name"]): entry for entry in entries}
    for key in [
        ("POST", "/v1/riders"),
        ("POST", "/v1/drivers"),
        ("POST", "/v1/quotes"),
        ("POST", "/v1/trips"),
        ("WS", "connect /v1/ws/driver"),
        ("WS", "send location"),
    ]:
        assert key in rows, (key, sorted(rows))
        assert rows[key]["num_requests"] >= 1
    assert all(entry["num_failures"] == 0 for entry in entries), text_out[-3000:]

    trips = (await session.scalars(select(Trip))).all()
    assert trips, "the riders requested no trip"
    async with engine.connect() as connection:
        report = await invariants.check(connection)
    assert report.ok, report.lines()


def test_the_command_line_names_what_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    from server.__main__ import main

    assert main(["simulate", "--speedup", "0"]) == 2
    assert "speedup must be positive" in capsys.readouterr().err
    outside = ["simulate", "--base-url", "http://127.0.0.1:9", "--center", "48.8566,2.3522"]
    assert main(outside) == 1
    assert "outside the service area" in capsys.readouterr().err
    assert main(["simulate", "--base-url", "http://127.0.0.1:9", "--drivers", "1"]) == 1
    assert "cannot reach the service at http://127.0.0.1:9" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--center", "somewhere"])
    assert "expected LAT,LON" in capsys.readouterr().err


# --- the PIN at pickup (server/simulator/curb.py): riders who ask for one hand it to the driver


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
        trip_share=1.0,
    )
    stats = await asyncio.wait_for(Simulation(config, out=lines.append, observer=log).run(), 90)
    assert (stats.requests_sent, stats.completed) == (3, 3), lines[-1]
    assert (stats.pin_riders, stats.pins_given) == (3, 3), lines[-1]
    # Every rider shared the trip once a driver took it, and their contact opened the link.
    assert (stats.trips_shared, stats.shares_opened) == (3, 3), lines[-1]
    assert "trips shared 3 (3 opened)" in lines[-1]
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
