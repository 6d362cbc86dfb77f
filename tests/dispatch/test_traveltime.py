"""The travel-time model: learning from real trails in PostGIS, storing and reloading it across
workers, the quote's and the offer's use of it, its bounds, and a database outage."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.db import create_engine, create_sessionmaker, utcnow
from coop.settings import Settings
from dispatch.locations.geometry import geography_point
from dispatch.locations.models import TrailPoint
from dispatch.matching import costs, travelstore, traveltime
from dispatch.matching.matcher import Matcher
from dispatch.matching.travelstore import TravelTimes
from dispatch.matching.traveltime import CellStats, TravelModel
from dispatch.trips.models import Trip, TripStatus
from tests.builders import DOWNTOWN, PLATEAU, make_driver, make_rider
from tests.polling import until
from tests.servers import postgres_relay

ZONE = ZoneInfo("America/Toronto")
# Two places about 2.3 km apart, each well inside its own H3 cell: a jammed one and a fast one.
SLOW = (45.5017, -73.5673)
FAST = (45.5225, -73.5800)


def _cell(point: tuple[float, float]) -> int:
    return traveltime.cell_of(*point)


def _trail(
    start: tuple[float, float], *, kmh: float, at: datetime, points: int = 10, step_s: float = 2
) -> list[tuple[float, float, datetime]]:
    """A drive due east from `start` at `kmh`, one report every `step_s`."""
    metres_per_degree_lon = 111_195 * math.cos(math.radians(start[0]))
    step_deg = kmh / 3.6 * step_s / metres_per_degree_lon
    return [
        (start[0], start[1] + i * step_deg, at + timedelta(seconds=i * step_s))
        for i in range(points)
    ]


async def _completed_trip(
    session: AsyncSession,
    rider_id: uuid.UUID,
    driver_id: uuid.UUID,
    trail: list[tuple[float, float, datetime]],
    *,
    implausible: int = 0,
) -> None:
    """A completed trip with its trail, written as the service writes them."""
    first, last = trail[0], trail[-1]
    trip = Trip(
        id=uuid.uuid4(),
        rider_id=rider_id,
        driver_id=driver_id,
        status=TripStatus.completed,
        region="montreal",
        pickup=geography_point(first[0], first[1]),
        dropoff=geography_point(last[0], last[1]),
        service_class="standard",
        agreement_version=1,
        currency="CAD",
        quote={},
        requested_at=first[2] - timedelta(minutes=5),
        matching_deadline_at=first[2],
        started_at=first[2],
        ended_at=last[2],
        implausible_positions=implausible,
    )
    session.add(trip)
    await session.flush()
    session.add_all(
        TrailPoint(
            trip_id=trip.id,
            driver_id=driver_id,
            position=geography_point(lat, lon),
            recorded_at=at,
        )
        for lat, lon, at in trail
    )
    await session.commit()


async def _people(client: AsyncClient, admin_headers: dict[str, str]) -> tuple[uuid.UUID, ...]:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers, name="Teacher")
    return rider.id, driver.id


async def _teach(
    session: AsyncSession,
    rider_id: uuid.UUID,
    driver_id: uuid.UUID,
    at: datetime,
    *,
    slow_trips: int = 12,
    fast_trips: int = 12,
) -> None:
    for i in range(slow_trips):
        when = at + timedelta(seconds=60 * i)
        await _completed_trip(session, rider_id, driver_id, _trail(SLOW, kmh=8, at=when))
    for i in range(fast_trips):
        when = at + timedelta(seconds=60 * i + 30)
        await _completed_trip(session, rider_id, driver_id, _trail(FAST, kmh=45, at=when))


def _matcher(app: FastAPI) -> Matcher:
    matcher: Matcher = app.state.matcher
    return matcher


async def test_the_model_learns_from_trails_a_slow_cell_a_fast_one_thin_data_and_no_spoofer(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
) -> None:
    rider_id, driver_id = await _people(client, admin_headers)
    at = (utcnow() - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    hour = traveltime.hour_of_week(at, ZONE)
    await _teach(session, rider_id, driver_id, at)
    # Thin data: one slow trip somewhere else.
    thin = (45.5090, -73.5540)
    await _completed_trip(session, rider_id, driver_id, _trail(thin, kmh=12, at=at))
    # A spoofer: reports jumping between two far places every second (never believable)...
    far = (45.5600, -73.6500)
    jumps = [
        (*(far if i % 2 else (45.4950, -73.5800)), at + timedelta(seconds=i)) for i in range(12)
    ]
    await _completed_trip(session, rider_id, driver_id, jumps)
    # ...and a trip whose reports the ingest already found implausible: ignored as a whole.
    ignored = (45.4700, -73.6000)
    await _completed_trip(
        session, rider_id, driver_id, _trail(ignored, kmh=5, at=at), implausible=3
    )

    done = await _matcher(app).learn_travel(now=utcnow())
    assert done.version is not None and done.trips == 27
    model = _matcher(app).travel.model
    assert model.version == done.version

    def kmh(point: tuple[float, float]) -> float:
        pace = model.pace_array(np.array([_cell(point)]), np.array([hour]))[0]
        return float(3.6 / pace)

    city = model.city_speed_kmh(hour)
    assert 15 < city < 35
    assert kmh(SLOW) < 0.6 * city and kmh(FAST) > 1.2 * city
    # One trip at 12 km/h moves its cell a little from the city's speed, not to 12 km/h.
    assert city * 0.85 < kmh(thin) < city
    for untaught in (far, ignored):
        assert _cell(untaught) not in model.cells.tolist()
        assert kmh(untaught) == pytest.approx(city)
    # Nothing new since: no new version.
    again = await _matcher(app).learn_travel(now=utcnow())
    assert (again.version, again.trips) == (None, 0)


async def test_the_leaders_recompute_reaches_another_workers_quotes_and_offers_without_restart(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    rider_id, driver_id = await _people(client, admin_headers)
    rider = await make_rider(client, name="Quoted")
    ask = {"pickup": DOWNTOWN, "dropoff": PLATEAU}
    before = (await client.post("/v1/quotes", json=ask, headers=rider.headers)).json()
    # The prior: the constant the quote always used.
    assert before["duration_s"] == math.ceil(before["distance_m"] / (25 / 3.6))
    # Trips in this hour of the week (the quote's), learned as if an hour from now.
    await _teach(session, rider_id, driver_id, utcnow().replace(minute=0, second=0, microsecond=0))

    # Another worker leads and recomputes; this app's worker polls (what its reload task does).
    leader = Matcher(
        engine=app.state.engine,
        sessionmaker=sessionmaker,
        redis=app.state.redis,
        settings=settings,
    )
    done = await leader.learn_travel(now=utcnow() + timedelta(hours=1))
    assert done.version is not None
    travel: TravelTimes = _matcher(app).travel
    assert travel.model.version == 0
    assert await travel.refresh() is True
    assert travel.model.version == done.version
    assert await travel.refresh() is False  # nothing changed: nothing reloaded

    after = (await client.post("/v1/quotes", json=ask, headers=rider.headers)).json()
    assert after["distance_m"] == before["distance_m"]
    expected = travel.model.route_duration_s(
        pickup_lat=DOWNTOWN["lat"],
        pickup_lon=DOWNTOWN["lon"],
        dropoff_lat=PLATEAU["lat"],
        dropoff_lon=PLATEAU["lon"],
        distance_m=after["distance_m"],
        hour=travel.hour(utcnow()),
    )
    assert after["duration_s"] == expected != before["duration_s"]
    # Deterministic for a model version: the same question, the same answer.
    again = (await client.post("/v1/quotes", json=ask, headers=rider.headers)).json()
    each_its_own = {"quote_id", "expires_at"}  # every quote is a record of its own
    assert {k: v for k, v in again.items() if k not in each_its_own} == {
        k: v for k, v in after.items() if k not in each_its_own
    }

    # The offer's pickup ETA: a driver in the jammed cell, a pickup 300 m east of them.
    driver = await make_driver(client, admin_headers, name="Offered")
    from tests.builders import place_driver, request_trip

    pickup = {"lat": SLOW[0], "lon": SLOW[1] + 0.0013}  # 100 m east, in the same cell
    await place_driver(app, driver.id, {"lat": SLOW[0], "lon": SLOW[1]})
    trip = await request_trip(client, rider, pickup=pickup, dropoff=PLATEAU)
    assert trip["quote"]["duration_s"] > 0
    report = await _matcher(app).run_batch()
    [offer] = report.offers
    eta = travel.model.pickup_eta_s_array(
        distance_m=np.array([float(offer.pickup_distance_m)]),
        from_lat=np.array([SLOW[0]]),
        from_lon=np.array([SLOW[1]]),
        to_lat=np.array([pickup["lat"]]),
        to_lon=np.array([pickup["lon"]]),
        hour=travel.hour(utcnow()),
    )[0]
    assert abs(offer.pickup_eta_s - int(eta)) <= 1  # PostGIS's distance, unrounded here
    assert offer.pickup_eta_s > 1.5 * costs.pickup_eta_s(offer.pickup_distance_m)


async def test_a_recompute_during_a_postgres_outage_keeps_the_last_model_and_retries(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    settings: Settings,
    short_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rider_id, driver_id = await _people(client, admin_headers)
    await _teach(session, rider_id, driver_id, utcnow() - timedelta(minutes=30), fast_trips=0)
    monkeypatch.setattr(travelstore, "RECOMPUTE_RETRY_S", 0.2)
    async with postgres_relay(settings, short_tmp) as (proxy, database_url):
        engine = create_engine(database_url, pool_size=2, max_overflow=0)
        try:
            worker = Matcher(
                engine=engine,
                sessionmaker=create_sessionmaker(engine),
                redis=app.state.redis,
                settings=settings,
            )
            first = await worker.learn_travel(now=utcnow())
            learned = worker.travel.model
            assert first.version is not None and learned.version == first.version
            await _completed_trip(
                session,
                rider_id,
                driver_id,
                _trail(FAST, kmh=45, at=utcnow() - timedelta(minutes=5)),
            )
            await proxy.stop()
            with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
                await worker.learn_travel(now=utcnow())
            await worker.travel.try_refresh()
            assert worker.travel.model is learned and worker.travel.failures == 1
            # The leader's loop: fails soft while the database is away, then catches up.
            import asyncio

            loop = asyncio.create_task(worker._learn_travel())
            try:
                await until(lambda: worker.travel_recompute_failures >= 1, what="a failure")
                assert worker.travel.model is learned
                await proxy.start()
                await until(
                    lambda: worker.travel.model.version > learned.version,
                    what="the recompute after the outage",
                )
            finally:
                loop.cancel()
                await asyncio.gather(loop, return_exceptions=True)
            assert _cell(FAST) in worker.travel.model.cells.tolist()
        finally:
            await engine.dispose()


def test_a_cell_of_absurd_speeds_gives_bounded_etas() -> None:
    cell = np.array([_cell(SLOW), _cell(FAST)], dtype=np.int64)
    hour = np.array([5, 5], dtype=np.int64)
    stats = CellStats(
        cell=cell,
        hour=hour,
        passages=np.array([10_000, 10_000], dtype=np.int64),
        distance_m=np.array([1e-9, 1e12]),  # a standstill, and light speed
        duration_s=np.array([1e9, 1e-3]),
    )
    model = traveltime.learn(stats)
    line = 1000.0
    for point in (SLOW, FAST):
        seconds = model.estimate_s(
            from_lat=point[0],
            from_lon=point[1],
            to_lat=point[0],
            to_lon=point[1],
            hour=5,
            line_m=line,
        )
        assert (
            line * traveltime.DETOUR_FACTOR / traveltime.MAX_SPEED_MPS
            <= seconds
            <= line * traveltime.DETOUR_FACTOR / traveltime.MIN_SPEED_MPS
        )
    assert np.isfinite(model.pace).all() and (model.pace > 0).all()
    with pytest.raises(ValueError, match="distances"):
        model.estimate_s(from_lat=0, from_lon=0, to_lat=0, to_lon=0, hour=0, line_m=-1)


def test_with_no_trips_the_model_is_the_prior() -> None:
    model = traveltime.learn(CellStats.of(traveltime.Passages.empty()))
    assert model.version == 0 and model.cells.size == 0
    assert model.city_speed_kmh() == pytest.approx(25)
    assert costs.pickup_eta_s(1000) == round(1000 * 1.3 / (25 / 3.6))


def _random_model(seed: int) -> TravelModel:
    rng = np.random.default_rng(seed)
    lat = 45.45 + rng.random(60) * 0.12
    lon = -73.70 + rng.random(60) * 0.16
    passages = traveltime.Passages(
        cell=traveltime.cells_of(lat, lon),
        hour=rng.integers(0, traveltime.HOURS, 60),
        distance_m=rng.random(60) * 2000 + 1,
        duration_s=rng.random(60) * 600 + 1,
    )
    return traveltime.learn(CellStats.of(passages), version=seed)


_MODELS = [_random_model(seed) for seed in range(4)]
_lat = st.floats(min_value=45.44, max_value=45.58)
_lon = st.floats(min_value=-73.71, max_value=-73.53)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=0, max_value=3),
    st.lists(st.tuples(_lat, _lon, _lat, _lon), min_size=1, max_size=12),
    st.integers(min_value=0, max_value=167),
)
def test_scalar_and_array_estimates_agree(
    which: int, pairs: list[tuple[float, float, float, float]], hour: int
) -> None:
    model = _MODELS[which]
    a = np.array(pairs)
    array = model.estimate_s_array(
        from_lat=a[:, 0], from_lon=a[:, 1], to_lat=a[:, 2], to_lon=a[:, 3], hour=hour
    )
    scalar = [
        model.estimate_s(from_lat=p[0], from_lon=p[1], to_lat=p[2], to_lon=p[3], hour=hour)
        for p in pairs
    ]
    assert array.tolist() == scalar
    assert (array >= 0).all() and np.isfinite(array).all()
    etas = model.pickup_eta_s_array(
        distance_m=traveltime.haversine_array(a[:, 0], a[:, 1], a[:, 2], a[:, 3]),
        from_lat=a[:, 0],
        from_lon=a[:, 1],
        to_lat=a[:, 2],
        to_lon=a[:, 3],
        hour=hour,
        from_cell=traveltime.cells_of(a[:, 0], a[:, 1]),
        to_cell=traveltime.cells_of(a[:, 2], a[:, 3]),
    )
    assert etas.tolist() == np.rint(array).astype(np.int64).tolist()
