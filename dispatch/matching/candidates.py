"""Who could take which request: the open requests of a region, and their candidate drivers.

One PostGIS query finds, for every request of the batch at once, the K nearest suitable drivers
within the agreement's `max_pickup_distance_m` (a LATERAL KNN search, `ORDER BY position <->
pickup LIMIT K`, on the GiST index of the latest positions). A driver is suitable when they are:

- an active member, available, and heard from within the grace period (`COOP_DRIVER_GRACE_S`);
- not holding a trip, and not holding an open offer;
- driving a wheelchair-accessible vehicle, if the request asks for one;
- not someone who declined this trip or let its offer expire.

For each candidate it also answers how long the driver has been waiting: since the end of their
last completed trip, or since they came on duty if that is later (docs/dispatch.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.core.db import sql_literal
from dispatch.trips.states import (
    COMPLETED_SQL,
    DRIVER_OPEN_LIST,
    OFFER_OPEN_SQL,
    OFFER_REFUSED_LIST,
    WAITING_SQL,
)
from drivers.models import DriverStatus

_ACTIVE_DRIVER_SQL = sql_literal(DriverStatus.active)

_OPEN_REQUESTS = text(
    f"""
    SELECT t.id
    FROM trip t
    WHERE t.region = :region AND t.status = {WAITING_SQL} AND t.matching_deadline_at > :now
      AND NOT EXISTS (
          SELECT 1 FROM trip_offer o WHERE o.trip_id = t.id AND o.status = {OFFER_OPEN_SQL}
      )
    ORDER BY t.requested_at, t.id
    LIMIT :limit
    """
)

_CANDIDATES = text(
    f"""
    SELECT t.id, c.driver_id, c.distance_m, c.waiting_since, c.last_trip_ended_at
    FROM trip t
    CROSS JOIN LATERAL (
        SELECT p.driver_id,
               ST_Distance(p.position, t.pickup) AS distance_m,
               GREATEST(COALESCE(p.available_since, p.last_seen_at), last.ended_at)
                   AS waiting_since,
               last.ended_at AS last_trip_ended_at
        FROM location_driver_position p
        JOIN driver d ON d.id = p.driver_id AND d.status = {_ACTIVE_DRIVER_SQL}
        JOIN driver_vehicle v ON v.driver_id = p.driver_id
        LEFT JOIN LATERAL (
            SELECT max(x.ended_at) AS ended_at
            FROM trip x WHERE x.driver_id = p.driver_id AND x.status = {COMPLETED_SQL}
        ) last ON true
        WHERE p.available
          AND p.position IS NOT NULL
          AND p.last_seen_at > :present_after
          AND ST_DWithin(p.position, t.pickup, :max_distance_m)
          AND (NOT t.wheelchair_accessible OR v.wheelchair_accessible)
          AND NOT EXISTS (
              SELECT 1 FROM trip o
              WHERE o.driver_id = p.driver_id
                AND o.status IN {DRIVER_OPEN_LIST}
          )
          AND NOT EXISTS (
              SELECT 1 FROM trip_offer q
              WHERE q.driver_id = p.driver_id AND q.status = {OFFER_OPEN_SQL}
          )
          AND NOT EXISTS (
              SELECT 1 FROM trip_offer e
              WHERE e.trip_id = t.id AND e.driver_id = p.driver_id
                AND e.status IN {OFFER_REFUSED_LIST}
          )
        -- Distance alone, no tie-break: a second sort key keeps PostgreSQL from reading the
        -- GiST index nearest-first (180 ms -> 3.6 ms a batch at 10,000 drivers).
        ORDER BY p.position <-> t.pickup
        LIMIT :k
    ) c
    WHERE t.id = ANY(CAST(:trip_ids AS uuid[])) AND t.status = {WAITING_SQL}
    ORDER BY t.id, c.distance_m, c.driver_id
    """
)


@dataclass(frozen=True)
class Candidate:
    trip_id: uuid.UUID
    driver_id: uuid.UUID
    distance_m: float
    # Seconds the driver has waited for a trip, and whether that wait began at a trip's end
    # (rather than when they came on duty).
    idle_s: float
    since_last_trip: bool


async def open_requests(
    *, session: AsyncSession, region: str, now: datetime, limit: int
) -> list[uuid.UUID]:
    """The region's requests waiting for an offer, oldest first."""
    rows = await session.execute(_OPEN_REQUESTS, {"region": region, "now": now, "limit": limit})
    return [row[0] for row in rows]


async def find(
    *,
    session: AsyncSession,
    trip_ids: list[uuid.UUID],
    now: datetime,
    present_after: datetime,
    max_distance_m: float,
    k: int,
) -> list[Candidate]:
    """Up to `k` candidate drivers for each request, nearest first."""
    if not trip_ids:
        return []
    rows = await session.execute(
        _CANDIDATES,
        {
            "trip_ids": trip_ids,
            "present_after": present_after,
            "max_distance_m": max_distance_m,
            "k": k,
        },
    )
    candidates = []
    for trip_id, driver_id, distance_m, waiting_since, last_trip_ended_at in rows:
        candidates.append(
            Candidate(
                trip_id=trip_id,
                driver_id=driver_id,
                distance_m=float(distance_m),
                idle_s=max(0.0, (now - waiting_since).total_seconds()),
                since_last_trip=last_trip_ended_at is not None
                and last_trip_ended_at >= waiting_since,
            )
        )
    return candidates
