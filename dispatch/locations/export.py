"""A driver's positions in their personal-data export (GET /v1/drivers/me/export).

The composition root installs `positions` as an export section (`server.exports`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_LATEST = text(
    """
    SELECT ST_Y(position::geometry), ST_X(position::geometry), heading_deg, speed_mps,
           reported_at, available, available_since, last_seen_at,
           shift_started_at, shift_online_s, shift_online_at
    FROM location_driver_position WHERE driver_id = :driver_id
    """
)

_TRAILS = text(
    """
    SELECT trip_id, ST_Y(position::geometry), ST_X(position::geometry), recorded_at
    FROM location_trail_point WHERE driver_id = :driver_id
    ORDER BY recorded_at, id
    """
)


async def positions(*, session: AsyncSession, driver_id: uuid.UUID) -> dict[str, Any]:
    """The driver's latest position and presence, and the trail of each trip they held, in order."""
    row = (await session.execute(_LATEST, {"driver_id": driver_id})).one_or_none()
    latest = None
    if row is not None:
        latest = {
            "position": None if row[0] is None else {"lat": row[0], "lon": row[1]},
            "heading_deg": row[2],
            "speed_mps": row[3],
            "reported_at": row[4],
            "available": row[5],
            "available_since": row[6],
            "last_seen_at": row[7],
            # The current shift, as the earnings credit counts it (docs/dispatch.md).
            "shift_started_at": row[8],
            "shift_online_s": row[9],
            "shift_online_at": row[10],
        }
    trails: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for trip_id, lat, lon, recorded_at in await session.execute(_TRAILS, {"driver_id": driver_id}):
        trails.setdefault(trip_id, []).append({"lat": lat, "lon": lon, "recorded_at": recorded_at})
    return {
        "latest": latest,
        "trails": [{"trip_id": trip_id, "points": points} for trip_id, points in trails.items()],
    }
