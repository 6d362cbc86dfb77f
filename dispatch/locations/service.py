"""Domain operations on positions: availability, presence, and reading a trip's trail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from coop.geo import Position
from dispatch.locations.geometry import lat_lon
from dispatch.locations.models import DriverPosition, TrailPoint
from dispatch.locations.shifts import SHIFT_BREAK_S, shift_accounting

# Hand-written: an upsert whose shift columns are the SQL fragment the ingest's flush shares.
# Going available starts a new stretch of waiting unless the driver was already available and
# present (within the grace period); going off duty ends it.
_SET_AVAILABILITY = text(
    f"""
    INSERT INTO location_driver_position AS p
        (driver_id, available, available_since, last_seen_at, shift_started_at, shift_online_at)
    VALUES (
        :driver_id,
        CAST(:available AS boolean),
        CASE WHEN CAST(:available AS boolean) THEN CAST(:now AS timestamptz) END,
        CAST(:now AS timestamptz),
        CASE WHEN CAST(:available AS boolean) THEN CAST(:now AS timestamptz) END,
        CASE WHEN CAST(:available AS boolean) THEN CAST(:now AS timestamptz) END
    )
    ON CONFLICT (driver_id) DO UPDATE SET
        -- the shift (dispatch.locations.shifts): coming on duty after a long break starts one
        {shift_accounting(on_duty="EXCLUDED.available")},
        available = EXCLUDED.available,
        available_since = CASE
            WHEN NOT EXCLUDED.available THEN NULL
            WHEN p.available AND p.available_since IS NOT NULL
                 AND p.last_seen_at
                     >= EXCLUDED.last_seen_at - make_interval(secs => CAST(:grace_s AS float8))
                THEN p.available_since
            ELSE EXCLUDED.available_since
        END,
        last_seen_at = GREATEST(p.last_seen_at, EXCLUDED.last_seen_at)
    """
)


async def set_availability(
    *,
    session: AsyncSession,
    driver_id: uuid.UUID,
    available: bool,
    now: datetime,
    grace_s: float,
) -> None:
    """Records that the driver takes trips (or not) from now; the caller commits."""
    await session.execute(
        _SET_AVAILABILITY,
        {
            "driver_id": driver_id,
            "available": available,
            "now": now,
            "grace_s": grace_s,
            "shift_break_s": SHIFT_BREAK_S,
        },
    )


@dataclass(frozen=True)
class Presence:
    available: bool
    position: Position | None
    last_seen_at: datetime
    reported_at: datetime | None = None  # when the position was received
    anchored_at: datetime | None = None  # when it was last believed only as a new start


async def presence(*, session: AsyncSession, driver_id: uuid.UUID) -> Presence | None:
    """What dispatch knows of the driver right now, if anything."""
    lat, lon = lat_lon(DriverPosition.position)
    row = (
        await session.execute(
            select(
                DriverPosition.available,
                lat,
                lon,
                DriverPosition.last_seen_at,
                DriverPosition.reported_at,
                DriverPosition.anchored_at,
            ).where(DriverPosition.driver_id == driver_id)
        )
    ).one_or_none()
    if row is None:
        return None
    position = None if row[1] is None else Position(lat=row[1], lon=row[2])
    return Presence(
        available=row[0],
        position=position,
        last_seen_at=row[3],
        reported_at=row[4],
        anchored_at=row[5],
    )


def _trail_of(trip_id: uuid.UUID, since: datetime, until: datetime) -> Select[float, float]:
    """The trip's trail points received between `since` and `until`, in order: lat, lon."""
    return (
        select(*lat_lon(TrailPoint.position))
        .where(
            TrailPoint.trip_id == trip_id,
            TrailPoint.recorded_at >= since,
            TrailPoint.recorded_at <= until,
        )
        .order_by(TrailPoint.recorded_at, TrailPoint.id)
    )


async def trail(
    *, session: AsyncSession, trip_id: uuid.UUID, since: datetime, until: datetime
) -> list[Position]:
    """The trip's reported positions received between `since` and `until`, in order."""
    rows = await session.execute(_trail_of(trip_id, since, until))
    return [Position(lat=row[0], lon=row[1]) for row in rows]


@dataclass(frozen=True)
class TrailFix:
    lat: float
    lon: float
    recorded_at: datetime
    segment_start: bool


async def trail_fixes(
    *, session: AsyncSession, trip_id: uuid.UUID, since: datetime, until: datetime
) -> list[TrailFix]:
    """The trip's trail between `since` and `until` as the meter reads it: each point with
    when it was received and whether it started a new stretch."""
    rows = await session.execute(
        _trail_of(trip_id, since, until).add_columns(
            TrailPoint.recorded_at, TrailPoint.segment_start
        )
    )
    return [TrailFix(row[0], row[1], row[2], row[3]) for row in rows]
