"""The travel-time model in PostgreSQL: the leader folds completed trips in, every worker reloads.

- `recompute` (run by the region's matcher leader every `RECOMPUTE_INTERVAL_S`): reads the
  trails of the trips completed since the last recompute, in (ended_at, id) order, at most
  `RECOMPUTE_MAX_TRIPS` at a time and only those ended `SETTLE_S` ago (a completion commits a
  moment after its `ended_at`), turns each into passages (`traveltime.passages_from_trail`: only
  believable moves), adds them to the cell-hour sums and writes a new version, all in one
  transaction under an advisory lock, so two leaders in a hand-over cannot count a trip twice.
  Trips the ingest counted implausible positions on (a spoofer's) teach nothing at all.
- `TravelTimes` (one per worker): the model in use. `refresh` reads the newest version number
  and, only when it changed, the sums, and rebuilds the model (`traveltime.learn`) in one
  statement's snapshot. A failure keeps the model it had: a worker whose database is away
  quotes and matches on the last model it read (or the prior) and tries again at the next poll.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, insert, literal, literal_column, select, text, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bargaining.fares import RouteDuration
from coop.outages import OutageLog
from dispatch.locations.geometry import lat_lon
from dispatch.locations.models import TrailPoint
from dispatch.matching import traveltime
from dispatch.matching.models import TravelCell, TravelModelVersion
from dispatch.matching.traveltime import CellStats, TrailFix, TravelModel
from dispatch.states import COMPLETED_SQL
from dispatch.trips.models import Trip

logger = logging.getLogger("coop.traveltime")

RECOMPUTE_INTERVAL_S = 300.0
# After a failed recompute (the database away), the leader tries again this much later.
RECOMPUTE_RETRY_S = 30.0
RELOAD_INTERVAL_S = 30.0
RECOMPUTE_MAX_TRIPS = 2000
SETTLE_S = 60.0

_LOCK_KEY = int.from_bytes(hashlib.sha256(b"coop.traveltime").digest()[:8], "big", signed=True)
_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
_NIL = uuid.UUID(int=0)

# Hand-written: a bulk upsert from arrays (one statement however many cells), which Core says
# only as a VALUES list of one row per cell.
_ADD = text(
    """
    INSERT INTO matching_travel_cell AS c (cell, hour, passages, distance_m, duration_s)
    SELECT * FROM unnest(
        CAST(:cells AS bigint[]), CAST(:hours AS smallint[]), CAST(:passages AS bigint[]),
        CAST(:distances AS float8[]), CAST(:durations AS float8[])
    )
    ON CONFLICT (cell, hour) DO UPDATE SET
        passages = c.passages + EXCLUDED.passages,
        distance_m = c.distance_m + EXCLUDED.distance_m,
        duration_s = c.duration_s + EXCLUDED.duration_s
    """
)


@dataclass(frozen=True)
class Recomputed:
    version: int | None  # the new version, or None when no trip had completed since
    trips: int
    passages: int


async def recompute(
    *,
    session: AsyncSession,
    now: datetime,
    zone: ZoneInfo,
    max_speed_kmh: float,
    max_trips: int = RECOMPUTE_MAX_TRIPS,
    time_scale: float = 1.0,
) -> Recomputed:
    """Folds the trips completed since the last recompute into the model; commits once.
    `time_scale` is the service's seconds per real second (COOP_METER_TIME_SCALE): the trails
    are stamped in real seconds, the model learns in the service's (`traveltime`'s docstring)."""
    await session.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))
    last = (
        await session.execute(
            select(TravelModelVersion.through_ended_at, TravelModelVersion.through_trip_id)
            .order_by(TravelModelVersion.version.desc())
            .limit(1)
        )
    ).one_or_none()
    through_at, through_id = (last[0], last[1]) if last is not None else (_EPOCH, _NIL)
    trips = (
        await session.execute(
            select(Trip.id, Trip.ended_at)
            .where(
                Trip.status == literal_column(COMPLETED_SQL),
                Trip.ended_at <= now - timedelta(seconds=SETTLE_S),
                tuple_(Trip.ended_at, Trip.id) > tuple_(literal(through_at), literal(through_id)),
            )
            .order_by(Trip.ended_at, Trip.id)
            .limit(max_trips)
        )
    ).all()
    if not trips:
        await session.rollback()
        return Recomputed(None, 0, 0)
    # The trails of those trips as the meter reads them (from start to completion), skipping
    # trips whose reports were found implausible while they came in.
    point = TrailPoint
    rows = await session.execute(
        select(point.trip_id, *lat_lon(point.position), point.recorded_at)
        .join(
            Trip,
            (point.trip_id == Trip.id)
            & (point.recorded_at >= Trip.started_at)
            & (point.recorded_at <= Trip.ended_at),
        )
        .where(Trip.id.in_([row[0] for row in trips]), Trip.implausible_positions == 0)
        .order_by(point.trip_id, point.recorded_at, point.id)
    )
    by_trip: dict[uuid.UUID, list[TrailFix]] = {}
    for trip_id, lat, lon, at in rows:
        by_trip.setdefault(trip_id, []).append(TrailFix(lat, lon, at))
    # Judging thousands of points is CPU work: off the event loop.
    passages, stats = await asyncio.to_thread(_learnt, by_trip, max_speed_kmh, zone, time_scale)
    if stats.cell.size:
        await session.execute(
            _ADD,
            {
                "cells": stats.cell.tolist(),
                "hours": stats.hour.tolist(),
                "passages": stats.passages.tolist(),
                "distances": stats.distance_m.tolist(),
                "durations": stats.duration_s.tolist(),
            },
        )
    version = await session.scalar(
        insert(TravelModelVersion)
        .values(
            computed_at=now,
            through_ended_at=trips[-1][1],
            through_trip_id=trips[-1][0],
            trips=len(trips),
            passages=int(passages.cell.size),
        )
        .returning(TravelModelVersion.version)
    )
    await session.commit()
    return Recomputed(int(version or 0), len(trips), int(passages.cell.size))


def _learnt(
    by_trip: dict[uuid.UUID, list[TrailFix]],
    max_speed_kmh: float,
    zone: ZoneInfo,
    time_scale: float,
) -> tuple[traveltime.Passages, CellStats]:
    passages = traveltime.concat(
        traveltime.passages_from_trail(
            fixes, max_speed_kmh=max_speed_kmh, zone=zone, time_scale=time_scale
        )
        for fixes in by_trip.values()
    )
    return passages, CellStats.of(passages)


async def load(session: AsyncSession) -> TravelModel:
    """The newest stored model (the prior, version 0, before the first recompute)."""
    # One statement, one snapshot: the version and the sums it names.
    newest = select(func.max(TravelModelVersion.version).label("version")).subquery()
    cell = TravelCell
    rows = (
        await session.execute(
            select(
                newest.c.version,
                cell.cell,
                cell.hour,
                cell.passages,
                cell.distance_m,
                cell.duration_s,
            ).select_from(newest.outerjoin(cell, true()))
        )
    ).all()
    await session.rollback()
    version = int(rows[0][0] or 0) if rows else 0
    present = [row for row in rows if row[1] is not None]
    if version == 0 or not present:
        return TravelModel.prior(version)
    stats = CellStats(
        cell=np.array([row[1] for row in present], dtype=np.int64),
        hour=np.array([row[2] for row in present], dtype=np.int64),
        passages=np.array([row[3] for row in present], dtype=np.int64),
        distance_m=np.array([row[4] for row in present], dtype=np.float64),
        duration_s=np.array([row[5] for row in present], dtype=np.float64),
    )
    return traveltime.learn(stats, version=version)


async def stored_version(session: AsyncSession) -> int:
    version = await session.scalar(select(func.max(TravelModelVersion.version)))
    await session.rollback()
    return int(version or 0)


class TravelTimes:
    """The model this worker uses, reloaded when the stored version changes."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], zone: ZoneInfo) -> None:
        self.sessionmaker = sessionmaker
        self.zone = zone
        self.model = TravelModel.prior()
        self.reloads = 0
        self.failures = 0
        self.outages = OutageLog(logger, "reading the travel-time model")

    def hour(self, at: datetime) -> int:
        return traveltime.hour_of_week(at, self.zone)

    def drive_s_array(
        self,
        at: datetime,
        from_lat: traveltime.FloatArray,
        from_lon: traveltime.FloatArray,
        to_lat: traveltime.FloatArray,
        to_lon: traveltime.FloatArray,
    ) -> traveltime.IntArray:
        """Whole seconds to drive from each point to each target at `at` (a rider's ETA in
        `driver_location`): the model in use now, the road over the straight line as in quotes."""
        seconds = self.model.estimate_s_array(
            from_lat=from_lat, from_lon=from_lon, to_lat=to_lat, to_lon=to_lon, hour=self.hour(at)
        )
        return np.rint(seconds).astype(np.int64)

    def route_duration(self, at: datetime) -> RouteDuration:
        """The quote's `RouteDuration` at `at`: the model in use now, at that hour of the week
        (the same model and hour always give the same seconds)."""
        model, hour = self.model, self.hour(at)

        def duration(
            *,
            pickup_lat: float,
            pickup_lon: float,
            dropoff_lat: float,
            dropoff_lon: float,
            distance_m: int,
        ) -> int:
            return model.route_duration_s(
                pickup_lat=pickup_lat,
                pickup_lon=pickup_lon,
                dropoff_lat=dropoff_lat,
                dropoff_lon=dropoff_lon,
                distance_m=distance_m,
                hour=hour,
            )

        return duration

    async def refresh(self) -> bool:
        """Reloads if the stored version is not the one in use; True if it did. Raises what the
        database raises (the model in use stays)."""
        async with self.sessionmaker() as session:
            version = await stored_version(session)
            if version == self.model.version:
                return False
            model = await load(session)
        self.model = model
        self.reloads += 1
        logger.info(
            "travel-time model %d loaded: %d cells, city speed %.1f km/h",
            model.version,
            model.cells.size,
            model.city_speed_kmh(),
        )
        return True

    async def try_refresh(self) -> None:
        """`refresh`, logging a failure instead of raising it (the model in use stays)."""
        try:
            await self.refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The model in use stays either way; an outage is said once, a bug every time.
            self.failures += 1
            self.outages.failed(exc)
        else:
            self.outages.recovered()

    async def run(self, interval_s: float = RELOAD_INTERVAL_S) -> None:
        """Polls for a new version until cancelled."""
        while True:
            await self.try_refresh()
            await asyncio.sleep(interval_s)
