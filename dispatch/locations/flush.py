"""The ingest's flush: the one statement that writes a batch of buffered reports, and what it
buffers (`LatestReport`, `TrailReport`). `dispatch.locations.ingest.LocationIngest` calls `write`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from coop.errors import dependency_down
from coop.outages import OutageLog
from coop.pubsub import rider_channel
from coop.redis_client import Redis
from dispatch.locations.frames import DriverLocationFrame
from dispatch.locations.shifts import SHIFT_BREAK_S, shift_accounting
from dispatch.states import DRIVER_OPEN_LIST

logger = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]

# The whole flush is this one statement, sent on the ingest's own connection in autocommit: one
# round trip, atomic on its own (data-modifying CTEs all run, to completion, in one snapshot).
# - `counted`: implausible reports counted on their drivers' open trips;
# - `latest`: the latest position and presence of every driver heard from (the row the
#   matcher's KNN search reads);
# - `appended`: the reports of drivers who hold a trip, appended to that trip's trail; the
#   statement returns each such trip's newest point and rider, for the rider's live view.
# Empty arrays make empty sub-statements, so one form serves every flush. Hand-written: Core
# cannot say data-modifying CTEs over unnest(...) cleanly, and this is the ingest's hot path.
_FLUSH = text(
    f"""
    WITH counted AS (
        UPDATE trip t SET implausible_positions = t.implausible_positions + u.n
        FROM unnest(CAST(:implausible_ids AS uuid[]), CAST(:implausible_counts AS int[]))
             AS u(driver_id, n)
        WHERE t.driver_id = u.driver_id AND t.status IN {DRIVER_OPEN_LIST}
        RETURNING t.id
    ),
    latest AS (
        INSERT INTO location_driver_position AS p
            (driver_id, position, heading_deg, speed_mps, reported_at, available, last_seen_at,
             anchored_at)
        SELECT u.driver_id,
               CASE WHEN u.lat IS NULL THEN NULL
                    ELSE CAST(ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326) AS geography) END,
               u.heading_deg, u.speed_mps, u.reported_at, false, u.seen_at, u.anchored_at
        FROM unnest(
            CAST(:driver_ids AS uuid[]), CAST(:lats AS float8[]), CAST(:lons AS float8[]),
            CAST(:headings AS float8[]), CAST(:speeds AS float8[]),
            CAST(:reported AS timestamptz[]), CAST(:seen AS timestamptz[]),
            CAST(:anchored AS timestamptz[])
        ) AS u(driver_id, lat, lon, heading_deg, speed_mps, reported_at, seen_at, anchored_at)
        JOIN driver d ON d.id = u.driver_id
        ON CONFLICT (driver_id) DO UPDATE SET
            position = CASE WHEN EXCLUDED.position IS NULL
                              OR EXCLUDED.reported_at < p.reported_at
                            THEN p.position ELSE EXCLUDED.position END,
            heading_deg = CASE WHEN EXCLUDED.position IS NULL
                                 OR EXCLUDED.reported_at < p.reported_at
                               THEN p.heading_deg ELSE EXCLUDED.heading_deg END,
            speed_mps = CASE WHEN EXCLUDED.position IS NULL
                               OR EXCLUDED.reported_at < p.reported_at
                             THEN p.speed_mps ELSE EXCLUDED.speed_mps END,
            reported_at = GREATEST(p.reported_at, EXCLUDED.reported_at),
            anchored_at = GREATEST(p.anchored_at, EXCLUDED.anchored_at),
            -- silent for longer than the grace period: a new stretch of waiting begins
            available_since = CASE
                WHEN p.available AND p.last_seen_at
                     < EXCLUDED.last_seen_at - make_interval(secs => CAST(:grace_s AS float8))
                THEN EXCLUDED.last_seen_at ELSE p.available_since END,
            last_seen_at = GREATEST(p.last_seen_at, EXCLUDED.last_seen_at),
            -- the shift (dispatch.locations.shifts): a sign of life keeps the duty it had
            {shift_accounting(on_duty="p.available")}
        RETURNING p.driver_id
    ),
    appended AS (
        INSERT INTO location_trail_point
            (trip_id, driver_id, position, recorded_at, segment_start)
        SELECT t.id, u.driver_id,
               CAST(ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326) AS geography), u.recorded_at,
               u.segment_start
        FROM unnest(
            CAST(:trail_ids AS uuid[]), CAST(:trail_lats AS float8[]),
            CAST(:trail_lons AS float8[]), CAST(:recorded AS timestamptz[]),
            CAST(:segment_starts AS boolean[])
        ) AS u(driver_id, lat, lon, recorded_at, segment_start)
        JOIN trip t ON t.driver_id = u.driver_id
                   AND t.status IN {DRIVER_OPEN_LIST}
        RETURNING trip_id, position, recorded_at, id
    )
    SELECT DISTINCT ON (a.trip_id)
           a.trip_id, t.rider_id, ST_Y(a.position::geometry), ST_X(a.position::geometry),
           t.status = 'assigned',
           ST_Y(CASE WHEN t.status = 'assigned' THEN t.pickup ELSE t.dropoff END::geometry),
           ST_X(CASE WHEN t.status = 'assigned' THEN t.pickup ELSE t.dropoff END::geometry)
    FROM appended a JOIN trip t ON t.id = a.trip_id
    ORDER BY a.trip_id, a.recorded_at DESC, a.id DESC
    """
)


@dataclass
class LatestReport:
    lat: float | None
    lon: float | None
    heading_deg: float | None
    speed_mps: float | None
    reported_at: datetime | None
    seen_at: datetime
    # The newest report of the batch believed only as a new start (Verdict.anchored).
    anchored_at: datetime | None = None


@dataclass(frozen=True)
class TrailReport:
    driver_id: uuid.UUID
    lat: float
    lon: float
    recorded_at: datetime
    segment_start: bool


@dataclass(frozen=True)
class MovedTrip:
    """A trip whose driver moved: the newest point of its trail and where the car is heading
    (the pickup until the driver arrives, then the destination)."""

    trip_id: uuid.UUID
    rider_id: uuid.UUID
    lat: float
    lon: float
    to_pickup: bool
    target_lat: float
    target_lon: float


# Seconds to drive from each (lat, lon) to each target (lat, lon): the four arrays in, whole
# seconds out. The composition root gives the matcher's travel-time model.
EtaArray = Callable[[FloatArray, FloatArray, FloatArray, FloatArray], Iterable[int]]


@dataclass(frozen=True)
class FlushResult:
    drivers: int  # latest-position rows written
    trail_points: int  # reports offered to trip trails
    riders_told: int  # driver_location frames published


async def write(
    engine: AsyncEngine,
    latest: dict[uuid.UUID, LatestReport],
    trail: list[TrailReport],
    implausible: dict[uuid.UUID, int],
    *,
    grace_s: float,
) -> list[MovedTrip]:
    """Writes a batch in one statement on `engine` (the ingest's own connection); answers each
    trip whose trail grew, with its newest point."""
    ids = list(latest)
    rows = [latest[driver_id] for driver_id in ids]
    async with engine.connect() as connection:
        result = await connection.execute(
            _FLUSH,
            {
                "implausible_ids": list(implausible),
                "implausible_counts": list(implausible.values()),
                "driver_ids": ids,
                "lats": [row.lat for row in rows],
                "lons": [row.lon for row in rows],
                "headings": [row.heading_deg for row in rows],
                "speeds": [row.speed_mps for row in rows],
                "reported": [row.reported_at for row in rows],
                "seen": [row.seen_at for row in rows],
                "anchored": [row.anchored_at for row in rows],
                "grace_s": grace_s,
                "shift_break_s": SHIFT_BREAK_S,
                "trail_ids": [point.driver_id for point in trail],
                "trail_lats": [point.lat for point in trail],
                "trail_lons": [point.lon for point in trail],
                "recorded": [point.recorded_at for point in trail],
                "segment_starts": [point.segment_start for point in trail],
            },
        )
        return [MovedTrip(*row) for row in result]


def etas(moved: list[MovedTrip], eta: EtaArray | None) -> list[int | None]:
    """Each moved trip's seconds to its target, in one call of the model for the batch; none
    without a model, and none rather than a failed flush if the model fails."""
    if eta is None or not moved:
        return [None] * len(moved)
    try:
        seconds = eta(
            np.array([m.lat for m in moved]),
            np.array([m.lon for m in moved]),
            np.array([m.target_lat for m in moved]),
            np.array([m.target_lon for m in moved]),
        )
        return [max(0, int(s)) for s in seconds]
    except Exception:
        logger.exception("the riders' ETAs could not be estimated; positions sent without")
        return [None] * len(moved)


async def tell_riders(
    redis: Redis, moved: list[MovedTrip], outages: OutageLog, eta: EtaArray | None = None
) -> int:
    """Publishes a `driver_location` frame to the rider of each trip whose driver moved, with
    where the car is heading and the estimate to get there; answers how many. Redis away is an
    outage (the positions are stored, and a missed live update is replaced by the next):
    counted, said once, and none published. Anything else is a bug, raised."""
    if not moved:
        return 0
    estimates = etas(moved, eta)
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for trip, eta_s in zip(moved, estimates, strict=True):
                frame = DriverLocationFrame(
                    type="driver_location",
                    trip_id=trip.trip_id,
                    lat=trip.lat,
                    lon=trip.lon,
                    heading_to="pickup" if trip.to_pickup else "destination",
                    eta_s=eta_s,
                )
                pipe.publish(rider_channel(trip.rider_id), frame.encode())
            await pipe.execute()
    except Exception as exc:
        if dependency_down(exc) is None:
            raise
        outages.failed(exc)
        return 0
    outages.recovered()
    return len(moved)
