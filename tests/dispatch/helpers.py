"""Helpers of the dispatch tests that put a policy in force and give drivers a shift so far."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import service as bargaining_service
from bargaining.terms import load_founding_terms
from coop.db import utcnow
from dispatch.matching.replay import Day
from tests.builders import Account


async def dispatch_terms(session: AsyncSession, **changes: object) -> None:
    """Puts in force a version of the agreement whose dispatch terms differ by `changes`."""
    terms = load_founding_terms()
    dispatch_terms = terms.dispatch.model_copy(update=changes)
    await bargaining_service._add_version(
        session=session,
        terms=terms.model_copy(update={"dispatch": dispatch_terms}),
        effective_from=utcnow(),
        proposal_id=None,
    )
    await session.commit()


async def on_shift(
    session: AsyncSession,
    driver: Account,
    *,
    online_h: float,
    earned: list[Decimal],
    waited_min: float = 0.0,
) -> None:
    """The driver has been online `online_h` hours this shift, completed trips paying them
    `earned` (ending at the shift's start plus an hour each, for the last time `waited_min` ago
    at most), and has waited `waited_min` minutes."""
    await session.execute(
        text(
            "UPDATE location_driver_position SET shift_started_at = now() - CAST(:h AS interval),"
            " shift_online_s = :s, shift_online_at = now(),"
            " available_since = now() - CAST(:w AS interval) WHERE driver_id = :id"
        ),
        {
            "h": timedelta(hours=online_h),
            "s": online_h * 3600,
            "w": timedelta(minutes=waited_min),
            "id": driver.id,
        },
    )
    for pay in earned:
        trip_id = uuid.uuid4()
        await session.execute(
            text(
                """
                INSERT INTO trip (id, rider_id, driver_id, status, region, pickup, dropoff,
                    wheelchair_accessible, service_class, agreement_version, currency, quote,
                    requested_at, matching_deadline_at, assigned_at, started_at, ended_at,
                    driver_earnings, fare_total, coop_commission, implausible_positions,
                    fare_capped)
                SELECT :id, r.id, :driver, 'completed', 'elsewhere',
                    ST_GeogFromText('POINT(-73.57 45.50)'), ST_GeogFromText('POINT(-73.58 45.52)'),
                    false, 'standard', 1, 'CAD', '{}'::jsonb,
                    now() - CAST(:h AS interval), now(), now() - CAST(:h AS interval),
                    now() - CAST(:h AS interval), now() - CAST(:ended AS interval),
                    :pay, :pay, 0, 0, false
                FROM rider r LIMIT 1
                """
            ),
            {
                "id": trip_id,
                "driver": driver.id,
                "h": timedelta(hours=online_h),
                "ended": timedelta(minutes=max(waited_min, 1)),
                "pay": pay,
            },
        )
    await session.commit()


def small_day(seed: int, requests: int = 120, drivers: int = 25) -> Day:
    """Two hours of a 6 km square: requests spread in time, shifts through the day."""
    rng = np.random.default_rng(seed)
    at = np.sort(rng.uniform(0, 7200, size=requests))
    pickup = rng.uniform(-3000, 3000, size=(requests, 2))
    start = rng.uniform(0, 3600, size=drivers)
    return Day(
        label=f"test day {seed}",
        request_at_s=at,
        pickup_xy=pickup,
        dropoff_xy=pickup + rng.normal(0, 2000, size=(requests, 2)),
        trip_distance_m=rng.uniform(1000, 9000, size=requests),
        trip_s=rng.uniform(300, 1500, size=requests),
        shift_start_s=start,
        shift_end_s=start + rng.uniform(3600, 7200, size=drivers),
        driver_xy=rng.uniform(-3000, 3000, size=(drivers, 2)),
    )
