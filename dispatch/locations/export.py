"""A driver's positions in their personal-data export (GET /v1/drivers/me/export).

The composition root installs `positions` as an export section (`server.exports`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.locations.geometry import lat_lon
from dispatch.locations.models import DriverPosition, TrailPoint


async def positions(*, session: AsyncSession, driver_id: uuid.UUID) -> dict[str, Any]:
    """The driver's latest position and presence, and the trail of each trip they held, in order."""
    p = DriverPosition
    lat, lon = lat_lon(p.position)
    latest_columns = (
        lat, lon, p.heading_deg, p.speed_mps, p.reported_at, p.available, p.available_since,
        p.last_seen_at, p.shift_started_at, p.shift_online_s, p.shift_online_at,
    )  # fmt: skip
    row = (
        await session.execute(select(*latest_columns).where(p.driver_id == driver_id))
    ).one_or_none()
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
    points = (
        select(TrailPoint.trip_id, *lat_lon(TrailPoint.position), TrailPoint.recorded_at)
        .where(TrailPoint.driver_id == driver_id)
        .order_by(TrailPoint.recorded_at, TrailPoint.id)
    )
    for trip_id, y, x, recorded_at in await session.execute(points):
        trails.setdefault(trip_id, []).append({"lat": y, "lon": x, "recorded_at": recorded_at})
    return {
        "latest": latest,
        "trails": [{"trip_id": trip_id, "points": points} for trip_id, points in trails.items()],
    }
