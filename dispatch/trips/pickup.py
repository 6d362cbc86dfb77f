"""Where the driver is from the pickup: what `arrived` and a rider's cancellation fee both judge."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coop.geo import haversine_m
from dispatch.locations import service as locations_service
from dispatch.locations.geometry import position_of
from dispatch.states import OfferStatus
from dispatch.trips.models import Offer, Trip

# `arrived` and the cancellation fee read the driver's last position; one older than this says
# nothing about where they are now.
POSITION_FRESH_S = 60


@dataclass(frozen=True)
class WhereFromPickup:
    """The driver's last position against the pickup, if a fresh one is known."""

    distance_m: float | None  # None: no position received within POSITION_FRESH_S
    radius_m: int
    # When the driver's positions were re-anchored since they were offered the trip (None: never).
    # A re-anchor believes a position because rejected ones agreed for a while, not because the
    # driver was seen to get there: it is no approach, and nothing after it is one either.
    reanchored_at: datetime | None = None

    @property
    def approach_believed(self) -> bool:
        return self.distance_m is not None and self.reanchored_at is None

    @property
    def at_pickup(self) -> bool:
        return (
            self.approach_believed
            and self.distance_m is not None
            and self.distance_m <= self.radius_m
        )


async def where_from_pickup(
    session: AsyncSession, trip: Trip, driver_id: uuid.UUID, terms_radius_m: int, now: datetime
) -> WhereFromPickup:
    presence = await locations_service.presence(session=session, driver_id=driver_id)
    if (
        presence is None
        or presence.position is None
        or presence.reported_at is None
        or (now - presence.reported_at).total_seconds() > POSITION_FRESH_S
    ):
        return WhereFromPickup(None, terms_radius_m)
    pickup = position_of(trip.pickup)
    distance = haversine_m(presence.position.lat, presence.position.lon, pickup.lat, pickup.lon)
    reanchored_at = None
    if presence.anchored_at is not None:
        offered_at = await session.scalar(
            select(Offer.created_at).where(
                Offer.trip_id == trip.id,
                Offer.driver_id == driver_id,
                Offer.status == OfferStatus.accepted,
            )
        )
        # Without the offer there is no believed start to approach from.
        if offered_at is None or presence.anchored_at >= offered_at:
            reanchored_at = presence.anchored_at
    return WhereFromPickup(distance, terms_radius_m, reanchored_at)
