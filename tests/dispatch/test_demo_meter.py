"""The demo's sped-up clock (COOP_METER_TIME_SCALE): the meter pays the simulated minutes, the
position checks believe the cars at their simulated speeds, and the demo's city completes trips
with the fares of real ones."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from geoalchemy2.shape import to_shape
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bargaining import service as bargaining_service
from bargaining.terms import load_founding_terms
from coop.db import create_sessionmaker
from coop.geo import EARTH_RADIUS_M, haversine_m
from coop.settings import Settings
from devtools.demo import demo_config, demo_service_env
from dispatch.trips import meter
from dispatch.trips.models import Trip, TripStatus
from server.app import create_app
from server.simulator.city import Simulation
from server.simulator.config import SimulationConfig
from tests.builders import assigned_trip, live_server, make_driver, make_rider


@pytest_asyncio.fixture
async def demo_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update={"meter_time_scale": 8.0}))
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


async def test_a_sped_up_demo_meters_its_simulated_minutes(
    demo_app: FastAPI, admin_headers: dict[str, str]
) -> None:
    async with AsyncClient(transport=ASGITransport(app=demo_app), base_url="http://test") as http:
        rider = await make_rider(http)
        driver = await make_driver(http, admin_headers)
        trip = await assigned_trip(demo_app, http, rider, driver)
        for step in ("arrived", "start", "complete"):
            response = await http.post(f"/v1/trips/{trip['id']}/{step}", headers=driver.headers)
            assert response.status_code == 200, response.text
        done = response.json()
    started = datetime.fromisoformat(done["started_at"])
    ended = datetime.fromisoformat(done["ended_at"])
    assert done["fare"]["duration_s"] == round(meter.duration_s(started, ended) * 8.0)


def test_production_meters_real_time() -> None:
    with pytest.raises(ValueError, match="COOP_METER_TIME_SCALE"):
        Settings(env="production", admin_token="x" * 32, meter_time_scale=8.0)
    assert Settings().meter_time_scale == 1.0


# --- the demo's clock for the position checks ---------------------------------------------------


def _drive(*, speed_kmh: float, speedup: float, reports: int) -> list[meter.TrailPoint]:
    """A car's trail heading north at `speed_kmh` of simulated time, reported every two real
    seconds by a city running `speedup` times faster than real time."""
    start = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    points = []
    for report in range(reports + 1):
        real_s = 2.0 * report
        north_m = speed_kmh / 3.6 * real_s * speedup
        points.append(
            meter.TrailPoint(
                45.5 + math.degrees(north_m / EARTH_RADIUS_M),
                -73.57,
                start + timedelta(seconds=real_s),
            )
        )
    return points


def test_the_meter_believes_a_sped_up_city_on_the_demos_clock() -> None:
    # 40 km/h of simulated time at speedup 8 is 320 km/h of real time: on real time nothing
    # after the first point is believed; on the demo's clock (scale 8) every metre is metered.
    trail = _drive(speed_kmh=40, speedup=8, reports=20)  # 40 real seconds, 320 simulated
    driven_m = 40 / 3.6 * 40 * 8
    real = meter.read(trail, max_speed_kmh=130, duration_s=40)
    assert real.distance_m == 0 and real.implausible == 20
    demo = meter.read(trail, max_speed_kmh=130, duration_s=40 * 8, time_scale=8)
    assert demo.implausible == 0
    assert demo.distance_m == pytest.approx(driven_m, rel=1e-3)
    assert not demo.distance_capped
    # The demo's clock is no licence: 300 km/h of simulated time is still not believed.
    racing = meter.read(
        _drive(speed_kmh=300, speedup=8, reports=20),
        max_speed_kmh=130,
        duration_s=40 * 8,
        time_scale=8,
    )
    assert racing.distance_m == 0 and racing.implausible == 20


def test_the_demo_runs_its_service_on_the_citys_clock() -> None:
    config = demo_config(SimulationConfig(speedup=8.0))
    assert config.service_time_scale == 8.0
    env = demo_service_env(config, {"COOP_ENV": "dev", "OTHER": "kept"})
    assert env == {"COOP_ENV": "dev", "OTHER": "kept", "COOP_METER_TIME_SCALE": "8"}
    with pytest.raises(ValueError, match="speedup must be between 1 and 100"):
        demo_config(SimulationConfig(speedup=500.0))
    # `simulate` against any service keeps the real clock unless told otherwise.
    assert SimulationConfig().service_time_scale == 1.0


# --- the demo's city against a real service ------------------------------------------------------

# `make demo` runs at 8; faster here, so that rides of 2.5-3.5 km (long enough to be priced
# above the minimum fare whatever their route) last about 15 s.
DEMO_TEST_SPEEDUP = 30.0


@pytest_asyncio.fixture
async def demo_city(settings: Settings, engine: AsyncEngine) -> AsyncIterator[SimulationConfig]:
    """The demo's wiring on a small, quick city: the service runs on the city's clock (as
    `python -m devtools.demo` starts it) under the founding agreement's 130 km/h."""
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        await bargaining_service.install_founding(session=session)
    config = demo_config(
        SimulationConfig(
            admin_token=settings.admin_token,
            speedup=DEMO_TEST_SPEEDUP,
            drivers=4,
            rate_per_min=600,
            max_requests=4,
            seed=11,
            spread_m=600.0,
            trip_min_m=2500.0,
            trip_max_m=3500.0,
            accessible_share=0.0,
            wheelchair_share=0.0,
            decline_rate=0.0,
            cancel_rate=0.0,
            think_min_s=0.5,
            think_max_s=1.0,
            boarding_min_s=5.0,
            boarding_max_s=10.0,
            summary_interval_s=1.0,
        )
    )
    scale = float(demo_service_env(config, {})["COOP_METER_TIME_SCALE"])
    app = create_app(
        settings.model_copy(update={"background_tasks": True, "meter_time_scale": scale})
    )
    async with live_server(app) as base_url:
        yield dataclasses.replace(config, base_url=base_url)


async def test_the_demo_city_completes_trips_at_city_speeds_with_real_fares(
    demo_city: SimulationConfig, session: AsyncSession
) -> None:
    lines: list[str] = []
    simulation = Simulation(demo_city, out=lines.append)
    stats = await asyncio.wait_for(simulation.run(), timeout=60)

    # The cars kept their city speeds (8-12 m/s of simulated time): nothing slowed them down.
    assert simulation.config.speed_min_mps == 8.0 and simulation.config.speed_max_mps == 12.0
    assert stats.completed == 4, lines[-1]
    assert "trips completed 4, cancelled 0, unfulfilled 0" in lines[-1]
    assert stats.location_refusals <= max(2, stats.location_frames // 20), stats
    assert (stats.http_errors, stats.error_frames) == (0, 0), lines[-1]
    # The drivers' pay statements filled up: the busiest one's is printed at the end.
    assert any(line.startswith("pay statement of simulated driver") for line in lines)

    founding = load_founding_terms()
    minimum = founding.fares["standard"].minimum
    trips = (await session.scalars(select(Trip))).all()
    assert len(trips) == 4
    for trip in trips:
        assert trip.status is TripStatus.completed
        assert trip.implausible_positions == 0
        assert not trip.fare_capped, trip.fare_cap_reason
        assert trip.fare is not None and trip.distance_m is not None and trip.duration_s
        pickup, dropoff = to_shape(trip.pickup), to_shape(trip.dropoff)
        line_m = haversine_m(pickup.y, pickup.x, dropoff.y, dropoff.x)
        # Along the street grid: at least the straight line (less what the first report after
        # `start` had already covered), at most an L's diagonal worth more.
        assert line_m * 0.9 - 200 <= trip.distance_m <= line_m * 1.42 + 50, (line_m, trip.fare)
        # Metered in simulated time, at the speeds of a city car.
        speed_kmh = trip.distance_m / trip.duration_s * 3.6
        assert 10 <= speed_kmh <= 50, trip.fare
        quote = Decimal(str(trip.quote["total"]))
        assert trip.fare_total is not None
        assert minimum <= trip.fare_total <= quote * Decimal("1.5")
        assert quote * Decimal("0.6") <= trip.fare_total, (quote, trip.fare)
    # Rides of 2.5 km or more pay more than the minimum fare (at 12 m/s at most: 3.50 base,
    # 2.62 of distance, 1.22 of time at the least).
    assert all(trip.fare_total is not None and trip.fare_total > minimum for trip in trips)
