"""What the composition root installs as bargaining's `ReplayRun`: the co-op's own last days (or
the New York sample days when there are too few) replayed under both sets of terms.

The co-op's days come from its trips: every request of the region made in the last
`HISTORY_DAYS` days (as it arrived, from its pickup to its destination, with its quote's distance
and duration), and the drivers' shifts read from the trips they drove: a shift runs from a
driver's first offer to the end of their last trip before a break of `SHIFT_BREAK_S` or more, and
starts at that first pickup. Time online without any trip leaves no trace in the trips, so the
replay sees fewer drivers than were online, the same under both sets of terms.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.impact_replay import Progress, ReplayOutcome
from bargaining.terms import Terms
from dispatch.locations.shifts import SHIFT_BREAK_S
from dispatch.matching import replay
from dispatch.matching.replay_process import replay_in_process
from dispatch.matching.replay_sample import sample_week

HISTORY_DAYS = 7
# A day counts as history with at least this many requests and one driver's shift; fewer than
# `MIN_DAYS` such days is too little to say anything: the sample days are replayed instead.
MIN_REQUESTS_PER_DAY = 20
MIN_DAYS = 3
EARTH_M_PER_DEG = 111_320.0

_HISTORY = text(
    """
    SELECT requested_at, ST_Y(pickup::geometry), ST_X(pickup::geometry),
           ST_Y(dropoff::geometry), ST_X(dropoff::geometry),
           CAST(quote ->> 'distance_m' AS double precision),
           CAST(quote ->> 'duration_s' AS double precision),
           driver_id, assigned_at, ended_at
    FROM trip
    WHERE region = :region AND requested_at >= :since AND requested_at < :now
    ORDER BY requested_at, id
    """
)


async def coop_days(
    *, session: AsyncSession, region: str, now: datetime, days: int = HISTORY_DAYS
) -> list[replay.Day]:
    """The region's last `days` whole days of 24 hours before `now`, oldest first; a day with
    too few requests or no shift is left out."""
    since = now - timedelta(days=days)
    rows = (await session.execute(_HISTORY, {"region": region, "since": since, "now": now})).all()
    await session.commit()
    if not rows:
        return []
    lat0 = float(np.mean([r[1] for r in rows]))
    lon0 = float(np.mean([r[2] for r in rows]))
    kx = EARTH_M_PER_DEG * math.cos(math.radians(lat0))

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return ((lon - lon0) * kx, (lat - lat0) * EARTH_M_PER_DEG)

    out = []
    for i in range(days):
        start = since + timedelta(days=i)
        end = start + timedelta(days=1)
        day_rows = [r for r in rows if start <= r[0] < end]
        shifts = _shifts(day_rows, start, xy)
        if len(day_rows) < MIN_REQUESTS_PER_DAY or not shifts:
            continue
        out.append(
            replay.Day(
                label=start.date().isoformat(),
                request_at_s=np.array([(r[0] - start).total_seconds() for r in day_rows]),
                pickup_xy=np.array([xy(r[1], r[2]) for r in day_rows]),
                dropoff_xy=np.array([xy(r[3], r[4]) for r in day_rows]),
                trip_distance_m=np.array([r[5] or 0.0 for r in day_rows]),
                trip_s=np.array([r[6] or 0.0 for r in day_rows]),
                shift_start_s=np.array([s[0] for s in shifts]),
                shift_end_s=np.array([s[1] for s in shifts]),
                driver_xy=np.array([s[2] for s in shifts]),
            )
        )
    return out


def _shifts(
    rows: Sequence[Any], start: datetime, xy: Callable[[float, float], tuple[float, float]]
) -> list[tuple[float, float, tuple[float, float]]]:
    """(start s, end s, where it starts) of each shift read from the day's trips."""
    by_driver: dict[object, list[tuple[float, float, tuple[float, float]]]] = {}
    for r in rows:
        driver_id, assigned_at, ended_at = r[7], r[8], r[9]
        if driver_id is None or assigned_at is None or ended_at is None:
            continue
        where = xy(r[1], r[2])
        by_driver.setdefault(driver_id, []).append(
            ((assigned_at - start).total_seconds(), (ended_at - start).total_seconds(), where)
        )
    shifts = []
    for trips in by_driver.values():
        trips.sort()
        begin, end, where = trips[0]
        for t_start, t_end, t_where in trips[1:]:
            if t_start - end >= SHIFT_BREAK_S:
                shifts.append((begin, end, where))
                begin, where = t_start, t_where
            end = max(end, t_end)
        shifts.append((begin, end, where))
    return sorted(shifts)


async def run(
    session: AsyncSession,
    now: datetime,
    current: Terms,
    proposed: Terms,
    budget_s: float,
    progress: Progress,
    *,
    region: str = "montreal",
) -> ReplayOutcome:
    """The replay of the co-op's days (or the sample's) under both sets of terms, in a process of
    its own (`replay_process`); over its budget, an outcome that says so."""
    days = await coop_days(session=session, region=region, now=now)
    source, note = "coop", None
    if len(days) < MIN_DAYS:
        note = (
            f"{len(days)} day(s) of the co-op's own history with {MIN_REQUESTS_PER_DAY} requests "
            f"or more, {MIN_DAYS} needed: the New York sample days instead"
        )
        source = "sample"
        days = await asyncio.to_thread(sample_week)
    labels = [day.label for day in days]
    try:
        figures = await replay_in_process(
            days, current, proposed, budget_s=budget_s, progress=progress
        )
    except replay.BudgetExceeded:
        return ReplayOutcome(source=source, days=labels, over_budget=True, note=note)
    return ReplayOutcome(source=source, days=labels, figures=figures, note=note)
