"""The fare review list: completed trips whose fare a person looks at (docs/pay.md).

The meter believes only possible moves and the fare is capped at the quote plus the agreement's
`max_over_quote_percent`, but a driver can still invent a detour at the speed limit while
standing still, and the rider then pays up to the cap. Such a fare is not refused (an honest
jam or detour looks the same from the meter); it goes to a person, with the reasons.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from coop import paging
from dispatch.trips.exceptions import FareReviewClosed, FareReviewNotFound
from dispatch.trips.models import Trip

# The meter's distance is far from the quote's route (the straight line times the quote's
# detour factor) past both of these: half of it again, and a kilometre (short trips' one-way
# streets and a missed turn stay off the list).
ROUTE_REVIEW_RATIO = 1.5
ROUTE_REVIEW_MIN_EXCESS_M = 1000

FARE_REVIEWS_ORDER = ((Trip.ended_at, False), (Trip.id, False))


def reason(*, capped: bool, distance_m: int, route_distance_m: int, implausible: int) -> str | None:
    """Why a completed trip's fare needs a person, in words, or None when it does not."""
    reasons = []
    if capped:
        reasons.append("The fare hit the cap over its quote.")
    excess_m = distance_m - route_distance_m
    if distance_m > route_distance_m * ROUTE_REVIEW_RATIO and excess_m > ROUTE_REVIEW_MIN_EXCESS_M:
        reasons.append(
            f"The meter's {distance_m} m are {excess_m} m more than the {route_distance_m} m "
            "of the route the quote assumed."
        )
    if not reasons:
        return None
    if implausible:
        reasons.append(f"{implausible} reported positions were not believed.")
    return " ".join(reasons)


def review_key(trip: Trip) -> tuple[datetime, uuid.UUID]:
    assert trip.ended_at is not None
    return trip.ended_at, trip.id


async def list_reviews(
    *,
    session: AsyncSession,
    open_only: bool,
    limit: int | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[Trip]:
    """Trips on the fare review list, oldest first (paged like support cases)."""
    query = (
        select(Trip)
        .where(Trip.fare_review_reason.is_not(None))
        .order_by(*(column for column, _ in FARE_REVIEWS_ORDER))
    )
    if after is not None:
        query = query.where(paging.after_key(FARE_REVIEWS_ORDER, after))
    if open_only:
        query = query.where(Trip.fare_reviewed_at.is_(None))
    if limit is not None:
        query = query.limit(limit)
    return list(await session.scalars(query))


async def close(*, session: AsyncSession, trip_id: uuid.UUID, note: str, now: datetime) -> Trip:
    """A person records what they found (and did) about a fare, taking it off the open list."""
    closed = await session.scalar(
        update(Trip)
        .where(
            Trip.id == trip_id,
            Trip.fare_review_reason.is_not(None),
            Trip.fare_reviewed_at.is_(None),
        )
        .values(fare_reviewed_at=now, fare_review_note=note)
        .returning(Trip.id)
        .execution_options(synchronize_session=False)
    )
    if closed is None:
        listed = await session.scalar(
            select(func.count())
            .select_from(Trip)
            .where(Trip.id == trip_id, Trip.fare_review_reason.is_not(None))
        )
        await session.rollback()
        if not listed:
            raise FareReviewNotFound(f"Trip {trip_id} is not on the fare review list")
        raise FareReviewClosed(f"The fare of trip {trip_id} was reviewed already")
    await session.commit()
    trip = await session.get(Trip, trip_id, populate_existing=True)
    assert trip is not None
    return trip
