"""The co-op's own days read from its trips for the impact replay (real PostGIS): requests as they
arrived, shifts read from the trips drivers drove, too little history answered with the sample."""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.impact_replay import Progress
from bargaining.terms import load_founding_terms
from coop.db import utcnow
from dispatch.matching import replay_job
from tests.builders import make_driver, make_rider

_TRIP = text(
    """
    INSERT INTO trip (id, rider_id, driver_id, status, region, pickup, dropoff,
        wheelchair_accessible, service_class, agreement_version, currency, quote,
        requested_at, matching_deadline_at, assigned_at, started_at, ended_at,
        driver_earnings, fare_total, coop_commission, implausible_positions, fare_capped)
    VALUES (:id, :rider, :driver, :status, :region,
        ST_GeogFromText(:pickup), ST_GeogFromText(:dropoff), false, 'standard', 1, 'CAD',
        CAST(:quote AS jsonb), :requested_at, :requested_at, :assigned_at, :assigned_at,
        :ended_at, 10, 12, 1, 0, false)
    """
)


async def _history(
    session: AsyncSession, client: AsyncClient, admin_headers: dict[str, str], days: int
) -> None:
    """`days` days of 24 requests each in Montréal, served by two drivers in turn (the last one
    of each day unfulfilled), and a request elsewhere that must not count."""
    rider = await make_rider(client, "Rider")
    drivers = [await make_driver(client, admin_headers, name=f"D{i}") for i in range(2)]
    rng = np.random.default_rng(7)
    day_start = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    for d in range(days):
        start = day_start - timedelta(days=d + 1) + timedelta(hours=8)
        for i in range(24):
            at = start + timedelta(minutes=20 * i)
            served = i < 23
            lat, lon = 45.50 + rng.uniform(-0.02, 0.02), -73.57 + rng.uniform(-0.02, 0.02)
            await session.execute(
                _TRIP,
                {
                    "id": uuid.uuid4(),
                    "rider": rider.id,
                    "driver": drivers[i % 2].id if served else None,
                    "status": "completed" if served else "unfulfilled",
                    "region": "montreal",
                    "pickup": f"POINT({lon} {lat})",
                    "dropoff": f"POINT({lon + 0.02} {lat + 0.01})",
                    "quote": '{"total": "14.20", "distance_m": 2400, "duration_s": 600}',
                    "requested_at": at,
                    "assigned_at": at + timedelta(seconds=30) if served else None,
                    "ended_at": at + timedelta(minutes=15) if served else None,
                },
            )
    await session.commit()


async def test_the_coops_days_become_requests_and_shifts(
    client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    await _history(session, client, admin_headers, days=3)
    days = await replay_job.coop_days(session=session, region="montreal", now=utcnow())
    assert len(days) == 3
    for day in days:
        assert len(day.request_at_s) == 24
        assert np.all(np.diff(day.request_at_s) >= 0)
        # Two drivers, each one shift (trips 40 minutes apart, never a 2-hour break).
        assert len(day.shift_start_s) == 2
        assert np.all(day.shift_end_s > day.shift_start_s)
        assert set(day.trip_distance_m.tolist()) == {2400.0}
    assert await replay_job.coop_days(session=session, region="elsewhere", now=utcnow()) == []


async def test_three_days_are_replayed_as_the_coops_and_fewer_fall_back_to_the_sample(
    client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    founding = load_founding_terms()
    await _history(session, client, admin_headers, days=3)
    progress = Progress()
    outcome = await replay_job.run(
        session, utcnow(), founding, founding, 120.0, progress, region="montreal"
    )
    assert outcome.source == "coop" and not outcome.over_budget and outcome.note is None
    assert len(outcome.days) == 3 and (progress.done, progress.total) == (6, 6)
    served = next(f for f in outcome.figures if f["figure"] == "served_share")
    assert served["current"] == served["proposed"] > 0.5
    # Two days ago and before are out of a one-day window: too little history.
    short = await replay_job.run(
        session, utcnow() - timedelta(days=2), founding, founding, 0.0, Progress()
    )
    assert short.source == "sample" and short.over_budget
    assert short.note is not None and "3 needed" in short.note
