"""A person's shared-trip links in their export (`trip_shares`): the links they made, never a
token (only its hash is kept, and the export does not carry that either)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.safety.share_models import Sharer, TripShare
from dispatch.trips.models import Trip


async def trip_shares(*, session: AsyncSession, subject_id: uuid.UUID, as_: Sharer) -> Any:
    """The links `subject_id` made as the trips' rider (or driver), oldest first."""
    party = Trip.rider_id if as_ is Sharer.rider else Trip.driver_id
    rows = await session.scalars(
        select(TripShare)
        .join(Trip, Trip.id == TripShare.trip_id)
        .where(party == subject_id, TripShare.sharer == as_)
        .order_by(TripShare.created_at, TripShare.id)
    )
    return [
        {
            "id": link.id,
            "trip_id": link.trip_id,
            "automatic": link.automatic,
            "created_at": link.created_at,
            "revoked_at": link.revoked_at,
            "first_opened_at": link.first_opened_at,
        }
        for link in rows
    ]
