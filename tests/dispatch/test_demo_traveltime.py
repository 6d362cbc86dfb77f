"""The travel-time model in a sped-up demo: it learns the simulated city's speeds in the
service's seconds (COOP_METER_TIME_SCALE), so the demo's quotes are those of a real city."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bargaining import service as bargaining_service
from coop.db import create_sessionmaker, utcnow
from coop.geo import EARTH_RADIUS_M
from coop.settings import Settings
from devtools.demo import demo_config, demo_service_env
from dispatch.matching import traveltime
from dispatch.matching.matcher import Matcher
from dispatch.matching.traveltime import CellStats, TrailFix
from server.app import create_app
from server.simulator.city import Simulation
from server.simulator.config import SimulationConfig
from tests.builders import live_server, make_rider

ZONE = ZoneInfo("America/Toronto")
# The speeds a car keeps across a city, stops included: nothing learned may fall outside.
CITY_KMH = (5.0, 60.0)


def _sped_up_trail(*, speed_kmh: float, speedup: float, reports: int) -> list[TrailFix]:
    """A car driving north at `speed_kmh` of simulated time, its reports stamped every real
    second by a server whose city runs `speedup` times faster than real time."""
    start = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    return [
        TrailFix(
            45.5 + math.degrees(speed_kmh / 3.6 * speedup * report / EARTH_RADIUS_M),
            -73.57,
            start + timedelta(seconds=report),
        )
        for report in range(reports + 1)
    ]


def _kmh(passages: traveltime.Passages) -> float:
    return float(passages.distance_m.sum() / passages.duration_s.sum() * 3.6)


def test_a_sped_up_trail_teaches_its_simulated_speed_in_the_services_seconds() -> None:
    trail = _sped_up_trail(speed_kmh=30, speedup=8, reports=30)
    demo = traveltime.passages_from_trail(trail, max_speed_kmh=130, zone=ZONE, time_scale=8)
    assert demo.cell.size > 0
    assert _kmh(demo) == pytest.approx(30, rel=1e-3)
    model = traveltime.learn(CellStats.of(demo))
    assert CITY_KMH[0] < model.city_speed_kmh() < CITY_KMH[1]
    # Read on the real clock (as it was), 30 km/h at speedup 8 is 240 km/h: the meter's check
    # refuses most moves, and those it takes after a new start teach that absurd speed.
    real = traveltime.passages_from_trail(trail, max_speed_kmh=130, zone=ZONE)
    assert real.distance_m.sum() < demo.distance_m.sum() / 5
    assert _kmh(real) == pytest.approx(240, rel=1e-3)
    # The demo's clock is no licence: 300 km/h of simulated time teaches nothing either.
    racing = _sped_up_trail(speed_kmh=300, speedup=8, reports=30)
    assert (
        traveltime.passages_from_trail(racing, max_speed_kmh=130, zone=ZONE, time_scale=8).cell.size
        == 0
    )
    # A gap of 120 s of the service's clock is 15 s of real time at speedup 8: too long.
    gappy = [trail[0], TrailFix(trail[1].lat, trail[1].lon, trail[0].at + timedelta(seconds=16))]
    assert (
        traveltime.passages_from_trail(gappy, max_speed_kmh=130, zone=ZONE, time_scale=8).cell.size
        == 0
    )
    with pytest.raises(ValueError, match="time_scale"):
        traveltime.passages_from_trail(trail, max_speed_kmh=130, zone=ZONE, time_scale=0)


# --- the demo's city against a real service ------------------------------------------------------

SPEEDUP = 30.0


@pytest_asyncio.fixture
async def demo_service(
    settings: Settings, engine: AsyncEngine
) -> AsyncIterator[tuple[FastAPI, SimulationConfig]]:
    """The demo's wiring (the service on the city's clock) on a small, quick city."""
    async with create_sessionmaker(engine)() as session:
        await bargaining_service.install_founding(session=session)
    config = demo_config(
        SimulationConfig(
            admin_token=settings.admin_token,
            speedup=SPEEDUP,
            drivers=4,
            rate_per_min=600,
            max_requests=4,
            seed=5,
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
        yield app, dataclasses.replace(config, base_url=base_url)


async def test_a_sped_up_demo_city_teaches_the_model_a_real_citys_speeds_and_quotes(
    demo_service: tuple[FastAPI, SimulationConfig],
) -> None:
    app, config = demo_service
    lines: list[str] = []
    stats = await asyncio.wait_for(Simulation(config, out=lines.append).run(), timeout=60)
    assert stats.completed == 4, lines[-1]

    matcher: Matcher = app.state.matcher
    # As the leader's recompute would, once the completions have settled.
    done = await matcher.learn_travel(now=utcnow() + timedelta(seconds=120))
    assert done.version is not None and done.passages > 0, done
    model = matcher.travel.model
    assert model.version == done.version
    hour = matcher.travel.hour(utcnow())
    learned_kmh = 3.6 / model.pace[:, hour]
    assert learned_kmh.size > 0
    # The simulated cars drive at 8-12 m/s: 29-43 km/h, never at the model's 110 km/h cap.
    assert np.all((learned_kmh > CITY_KMH[0]) & (learned_kmh < CITY_KMH[1])), learned_kmh
    assert CITY_KMH[0] < model.city_speed_kmh(hour) < CITY_KMH[1]

    # The demo's quote: 3.4 km of road takes minutes, not the 111 s of a model at its cap.
    async with AsyncClient(base_url=config.base_url) as http:
        rider = await make_rider(http, name="Asks after the demo")
        ask = {
            "pickup": {"lat": 45.5048, "lon": -73.5698},
            "dropoff": {"lat": 45.5048 + 2600 / 111_000, "lon": -73.5698},
        }
        quote = (await http.post("/v1/quotes", json=ask, headers=rider.headers)).json()
    assert quote["distance_m"] > 3000, quote
    quoted_kmh = quote["distance_m"] / quote["duration_s"] * 3.6
    assert CITY_KMH[0] < quoted_kmh < CITY_KMH[1], quote
