"""Offers: a driver accepts or declines one; the service closes those nobody answered, withdraws
those of a trip that ended or of a driver gone off duty, and ends the requests nobody took.

Every status change is one conditional UPDATE; an operation commits once or not at all."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, case, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.states import TRANSITIONS, Move, OfferStatus
from dispatch.trips import pin as pins
from dispatch.trips.booking import constraint_name
from dispatch.trips.exceptions import (
    DriverBusy,
    DriverNotActive,
    NotYourOffer,
    OfferExpired,
    OfferNotFound,
)
from dispatch.trips.models import Offer, Trip
from dispatch.trips.queries import load
from drivers.models import Driver, DriverStatus


@dataclass(frozen=True)
class ClosedOffer:
    """An offer the system closed (expired or withdrawn): its driver is told."""

    offer_id: uuid.UUID
    driver_id: uuid.UUID
    trip_id: uuid.UUID
    reason: str


async def _offer_or_refusal(
    session: AsyncSession, offer_id: uuid.UUID, driver_id: uuid.UUID
) -> Offer:
    offer = await session.scalar(
        select(Offer).where(Offer.id == offer_id).execution_options(populate_existing=True)
    )
    if offer is None:
        raise OfferNotFound(f"No offer {offer_id}")
    if offer.driver_id != driver_id:
        raise NotYourOffer("This offer was made to another driver")
    return offer


async def accept(
    *,
    session: AsyncSession,
    offer_id: uuid.UUID,
    driver_id: uuid.UUID,
    now: datetime,
    time_zone: str,
) -> Trip:
    """The driver takes the offered trip: the offer and the trip change together or not at all,
    with the rider's PIN when their policy asks for one (`time_zone`: the jurisdiction's, where
    the night of a `night` policy is counted)."""
    trip_id = await session.scalar(select(Offer.trip_id).where(Offer.id == offer_id))
    if trip_id is not None:
        # Rows are locked in one order everywhere (the trip, then its offers: cancellation
        # and expiry do the same), so an accept racing a cancel waits instead of deadlocking.
        await session.execute(
            select(Trip.id).where(Trip.id == trip_id).with_for_update(key_share=True)
        )
    # Active at the moment of acceptance: the driver's row is share-locked until the commit, so
    # a deactivation either committed before (and is seen here) or waits for this assignment.
    driver_status = await session.scalar(
        select(Driver.status).where(Driver.id == driver_id).with_for_update(read=True)
    )
    if driver_status is not DriverStatus.active:
        # The offer can never be taken now: withdrawn, so the trip goes back to matching.
        withdrawn = await session.scalar(
            update(Offer)
            .where(
                Offer.id == offer_id,
                Offer.driver_id == driver_id,
                Offer.status == OfferStatus.pending,
            )
            .values(status=OfferStatus.withdrawn, responded_at=now)
            .returning(Offer.id)
        )
        if withdrawn is None:
            await session.rollback()
            await _offer_or_refusal(session, offer_id, driver_id)  # 404 / 403 first
        else:
            await session.commit()
        raise DriverNotActive(
            "Your membership is not active: you cannot take trips until a person reactivates it"
        )
    accepted = await session.scalar(
        update(Offer)
        .where(
            Offer.id == offer_id,
            Offer.driver_id == driver_id,
            Offer.status == OfferStatus.pending,
            Offer.expires_at > now,
        )
        .values(status=OfferStatus.accepted, responded_at=now)
        .returning(Offer.trip_id)
    )
    if accepted is None:
        await session.rollback()
        offer = await _offer_or_refusal(session, offer_id, driver_id)
        if offer.status is OfferStatus.accepted:
            # A repeated accept (a double tap, a retry after a lost answer) changes nothing.
            return await load(session, offer.trip_id)
        state = "expired" if offer.status is OfferStatus.pending else offer.status.value
        raise OfferExpired(f"The offer is {state}; it can no longer be accepted")
    move = TRANSITIONS[Move.assign]
    try:
        trip = await session.scalar(
            update(Trip)
            .where(Trip.id == accepted, Trip.status.in_(move.sources))
            .values(status=move.target, driver_id=driver_id, assigned_at=now)
            .returning(Trip)
            .execution_options(populate_existing=True)
        )
    except IntegrityError as exc:
        await session.rollback()
        if constraint_name(exc) == "uq_trip_open_driver_id":
            raise DriverBusy("Finish the trip you hold before accepting another") from exc
        raise
    if trip is None:
        await session.rollback()
        raise OfferExpired("The trip is no longer waiting for a driver")
    await pins.issue(session=session, trip=trip, time_zone=time_zone, now=now)
    await session.commit()
    return trip


async def decline(
    *, session: AsyncSession, offer_id: uuid.UUID, driver_id: uuid.UUID, now: datetime
) -> Offer:
    """The driver says no. No penalty of any kind; the trip goes to the next batch without them."""
    declined = await session.scalar(
        update(Offer)
        .where(
            Offer.id == offer_id,
            Offer.driver_id == driver_id,
            Offer.status == OfferStatus.pending,
        )
        .values(status=OfferStatus.declined, responded_at=now)
        .returning(Offer)
        .execution_options(populate_existing=True)
    )
    if declined is None:
        await session.rollback()
        offer = await _offer_or_refusal(session, offer_id, driver_id)
        if offer.status is OfferStatus.declined:
            return offer  # declining twice is declining once
        raise OfferExpired(f"The offer is {offer.status.value}; there is nothing to decline")
    await session.commit()
    return declined


async def _close_pending(
    session: AsyncSession,
    condition: ColumnElement[bool],
    *,
    status: OfferStatus,
    reason: str,
    now: datetime,
) -> list[ClosedOffer]:
    """Closes the pending offers that meet `condition` (withdrawn or expired), in one UPDATE;
    the caller commits. Answers them, for their drivers to be told."""
    rows = await session.execute(
        update(Offer)
        .where(condition, Offer.status == OfferStatus.pending)
        .values(status=status, responded_at=now)
        .returning(Offer.id, Offer.driver_id, Offer.trip_id)
    )
    return [ClosedOffer(row[0], row[1], row[2], reason) for row in rows]


async def withdraw_pending(
    session: AsyncSession, trip_ids: list[uuid.UUID], now: datetime, reason: str
) -> list[ClosedOffer]:
    if not trip_ids:
        return []
    return await _close_pending(
        session, Offer.trip_id.in_(trip_ids), status=OfferStatus.withdrawn, reason=reason, now=now
    )


async def withdraw_offers_of_driver(
    *, session: AsyncSession, driver_id: uuid.UUID, now: datetime
) -> list[ClosedOffer]:
    """Withdraws the driver's open offer (they went off duty); the caller commits."""
    return await _close_pending(
        session,
        Offer.driver_id == driver_id,
        status=OfferStatus.withdrawn,
        reason="unavailable",
        now=now,
    )


async def expire_offers(*, session: AsyncSession, now: datetime) -> list[ClosedOffer]:
    """Closes the offers nobody answered in time; their trips return to matching.

    An offer the driver's socket never wrote ends `undelivered`, not `expired`: the driver never
    saw it, so it is not held against the trip, and the driver stays eligible for it."""
    rows = await session.execute(
        update(Offer)
        .where(Offer.status == OfferStatus.pending, Offer.expires_at <= now)
        .values(
            status=case(
                (
                    Offer.delivered_at.is_(None),
                    literal(OfferStatus.undelivered, Offer.status.type),
                ),
                else_=literal(OfferStatus.expired, Offer.status.type),
            ),
            responded_at=now,
        )
        .returning(Offer.id, Offer.driver_id, Offer.trip_id, Offer.status)
    )
    closed = [ClosedOffer(row[0], row[1], row[2], OfferStatus(row[3]).value) for row in rows]
    await session.commit()
    return closed


async def mark_delivered(
    *, session: AsyncSession, offer_ids: list[uuid.UUID], now: datetime
) -> int:
    """Records that the driver's socket wrote these offers (the first write counts); commits.

    Answers how many were still pending and undelivered."""
    if not offer_ids:
        return 0
    result = await session.execute(
        update(Offer)
        .where(
            Offer.id.in_(offer_ids),
            Offer.delivered_at.is_(None),
            Offer.status == OfferStatus.pending,
        )
        .values(delivered_at=now)
        .returning(Offer.id)
    )
    count = len(result.all())
    await session.commit()
    return count


async def expire_requests(
    *, session: AsyncSession, now: datetime
) -> tuple[list[Trip], list[ClosedOffer]]:
    """Ends as `unfulfilled` the requests nobody accepted within the agreement's max_wait_s."""
    move = TRANSITIONS[Move.expire]
    trips = list(
        await session.scalars(
            update(Trip)
            .where(Trip.status.in_(move.sources), Trip.matching_deadline_at <= now)
            .values(status=move.target, ended_at=now)
            .returning(Trip)
            .execution_options(populate_existing=True)
        )
    )
    withdrawn = await withdraw_pending(session, [trip.id for trip in trips], now, "unfulfilled")
    await session.commit()
    return trips, withdrawn
