"""Reading trips: loading one, who is a party to it, the open trip of a rider or a driver, a
driver's pending offer, and the completed trips bargaining re-prices."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.impact import MeteredTrip
from coop.auth import Principal, Role
from dispatch.states import DRIVER_OPEN, RIDER_OPEN, OfferStatus
from dispatch.trips.exceptions import NotYourTrip, TripNotFound
from dispatch.trips.models import CancelledBy, Offer, Trip
from dispatch.trips.rules import was_ridden


async def load(session: AsyncSession, trip_id: uuid.UUID) -> Trip:
    """The trip as stored now (a row this session already holds is read again), or 404."""
    trip = await session.scalar(
        select(Trip).where(Trip.id == trip_id).execution_options(populate_existing=True)
    )
    if trip is None:
        raise TripNotFound(f"No trip {trip_id}")
    return trip


def party_to(trip: Trip, principal: Principal, *, to: str = "see or change it") -> CancelledBy:
    """The caller's part in the trip (its rider or its driver): the one rule of who is a party
    to a trip, for every read and move of it (and its receipt); anyone else is refused."""
    if principal.role is Role.rider and principal.subject_id == trip.rider_id:
        return CancelledBy.rider
    if principal.role is Role.driver and principal.subject_id == trip.driver_id:
        return CancelledBy.driver
    raise NotYourTrip(f"Only the trip's rider and its driver may {to}")


async def get_for(*, session: AsyncSession, trip_id: uuid.UUID, principal: Principal) -> Trip:
    """The trip, if the caller is its rider or its driver."""
    trip = await load(session, trip_id)
    party_to(trip, principal)
    return trip


async def open_trip_of_driver(*, session: AsyncSession, driver_id: uuid.UUID) -> Trip | None:
    """The driver's non-terminal trip, if any (there is at most one)."""
    result: Trip | None = await session.scalar(
        select(Trip).where(Trip.driver_id == driver_id, Trip.status.in_(DRIVER_OPEN))
    )
    return result


async def open_trip_of_rider(*, session: AsyncSession, rider_id: uuid.UUID) -> Trip | None:
    """The rider's non-terminal trip, if any (there is at most one)."""
    result: Trip | None = await session.scalar(
        select(Trip).where(Trip.rider_id == rider_id, Trip.status.in_(RIDER_OPEN))
    )
    return result


async def pending_offer_of_driver(
    *, session: AsyncSession, driver_id: uuid.UUID, now: datetime
) -> tuple[Offer, Trip] | None:
    """The driver's open offer, if one is still answerable."""
    row = (
        await session.execute(
            select(Offer, Trip)
            .join(Trip, Trip.id == Offer.trip_id)
            .where(
                Offer.driver_id == driver_id,
                Offer.status == OfferStatus.pending,
                Offer.expires_at > now,
            )
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def completed_since(session: AsyncSession, since: datetime) -> list[MeteredTrip]:
    """What bargaining's impact estimate re-prices: the trips completed at or after `since`."""
    rows = await session.execute(
        select(Trip.service_class, Trip.distance_m, Trip.duration_s).where(
            was_ridden(), Trip.ended_at >= since
        )
    )
    return [
        MeteredTrip(service_class=row[0], distance_m=row[1] or 0, duration_s=row[2] or 0)
        for row in rows
    ]
