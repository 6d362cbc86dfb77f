"""Calling a trip off, by its rider or its driver, and what a rider's cancellation costs."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import fares
from bargaining import service as bargaining_service
from bargaining.terms import money_str
from coop.auth import Principal
from coop.errors import InvalidTransition
from dispatch.states import TRANSITIONS, Move, OfferStatus, TripStatus, refusal
from dispatch.trips.models import CancelledBy, Offer, Trip
from dispatch.trips.offers import ClosedOffer, withdraw_pending
from dispatch.trips.pickup import POSITION_FRESH_S, where_from_pickup
from dispatch.trips.queries import load, party_to

# "Approaching" (docs/dispatch.md, "Cancelling"): at least this much closer to the pickup, in a
# straight line, than when the driver was offered the trip.
APPROACH_MIN_PROGRESS_M = 100

# The reason a rider gives when the driver or the car is not the one the app showed: the rider
# must be able to refuse that car at no cost whatever the time, and a person looks at why
# (docs/safety.md, "Safety cases"). It opens a case; it is never an action against the driver.
DOES_NOT_MATCH = "driver_or_car_does_not_match"
MISMATCH_FREE = (
    "The driver or the car did not match what the app showed: free, and a person at the co-op "
    "looks at it."
)

# Opens the safety case of a mismatch, in the cancellation's transaction. Safety sits above
# trips, so the composition fills this in (`TripsState.open_safety_case`).
SafetyCaseOpener = Callable[[AsyncSession, Trip, datetime], Awaitable[object]]


async def rider_cancellation_fee(
    session: AsyncSession, trip: Trip, now: datetime
) -> tuple[Decimal, str]:
    """What the rider's cancellation costs, and why. The fee is due only after the agreement's
    free period, and only if the driver really arrived (`arrived` is only accepted at the
    pickup) or was approaching it: a fresh position at least APPROACH_MIN_PROGRESS_M closer to
    the pickup than when they were offered the trip, or already within the arrival radius."""
    agreement = await bargaining_service.get_version(
        session=session, version=trip.agreement_version
    )
    terms = agreement.terms
    free_s = terms.cancellation.free_period_s
    if trip.driver_id is None or trip.assigned_at is None:
        return Decimal("0.00"), "No driver had accepted the trip yet: cancelling is free."
    fee = fares.cancellation_fee(terms, assigned_at=trip.assigned_at, cancelled_at=now)
    if fee == 0:
        return fee, f"Cancelled within the free period ({free_s} s after a driver accepted): free."
    fee_text = f"{money_str(fee)} {terms.currency}"
    if trip.status is TripStatus.arrived:
        return fee, (
            f"The driver had arrived at the pickup and the free period ({free_s} s) was over: "
            f"the fee of {fee_text} goes to the driver."
        )
    offered_m = await session.scalar(
        select(Offer.pickup_distance_m).where(
            Offer.trip_id == trip.id,
            Offer.driver_id == trip.driver_id,
            Offer.status == OfferStatus.accepted,
        )
    )
    radius_m = terms.dispatch.arrival_radius_m
    where = await where_from_pickup(session, trip, trip.driver_id, radius_m, now)
    if where.distance_m is None:
        return Decimal("0.00"), (
            f"No position of the driver was received in the last {POSITION_FRESH_S} s, so "
            "they could not be shown to be approaching the pickup: free."
        )
    if where.reanchored_at is not None:
        return Decimal("0.00"), (
            "The driver's positions were believed only as a new start after they were offered "
            "the trip, so they could not be shown to be approaching the pickup: free."
        )
    approaching = where.at_pickup or (
        offered_m is not None and where.distance_m <= offered_m - APPROACH_MIN_PROGRESS_M
    )
    if not approaching:
        return Decimal("0.00"), (
            f"The driver was {round(where.distance_m)} m from the pickup, not at least "
            f"{APPROACH_MIN_PROGRESS_M} m closer than the {offered_m} m when offered the trip: "
            "not approaching, so cancelling is free."
        )
    return fee, (
        f"The free period ({free_s} s) was over and the driver was approaching the pickup "
        f"({round(where.distance_m)} m from it, {offered_m} m when offered the trip): the fee "
        f"of {fee_text} goes to the driver."
    )


async def cancel(
    *,
    session: AsyncSession,
    trip_id: uuid.UUID,
    principal: Principal,
    reason: str | None,
    now: datetime,
    open_safety_case: SafetyCaseOpener | None = None,
) -> tuple[Trip, list[ClosedOffer]]:
    """Calls the trip off. A rider pays the agreement's fee after its free period (all of it to
    the driver); a driver's cancellation costs the rider nothing. A rider's reason
    `driver_or_car_does_not_match` is free at any time and opens a safety case (through
    `open_safety_case`, which it then requires) in the same transaction."""
    mismatch = reason == DOES_NOT_MATCH
    transition = TRANSITIONS[Move.cancel]
    # The fee depends on the status seen, so the UPDATE is conditional on that status; statuses
    # only move forward, so a lost race is retried at most once per later status.
    for _ in range(len(transition.sources) + 1):
        current = await load(session, trip_id)
        party = party_to(current, principal)
        if current.status not in transition.sources:
            raise InvalidTransition(
                refusal(Move.cancel, current.status), trip_status=current.status.value
            )
        fee: Decimal | None = None
        fee_reason: str | None = None
        if party is CancelledBy.rider and mismatch:
            if open_safety_case is None:
                # A case nobody would open must not be promised: a wiring bug, loudly.
                raise RuntimeError("a mismatch cancellation needs the safety case opener")
            fee, fee_reason = Decimal("0.00"), MISMATCH_FREE
        elif party is CancelledBy.rider:
            fee, fee_reason = await rider_cancellation_fee(session, current, now)
        party_column = Trip.rider_id if party is CancelledBy.rider else Trip.driver_id
        trip = await session.scalar(
            update(Trip)
            .where(
                Trip.id == trip_id,
                Trip.status == current.status,
                party_column == principal.subject_id,
            )
            .values(
                status=transition.target,
                ended_at=now,
                cancel_reason=reason,
                cancelled_by=party,
                cancellation_fee=fee,
                cancellation_fee_reason=fee_reason,
            )
            .returning(Trip)
            .execution_options(populate_existing=True)
        )
        if trip is None:
            await session.rollback()
            continue
        withdrawn = await withdraw_pending(session, [trip.id], now, "cancelled")
        if party is CancelledBy.rider and mismatch and open_safety_case is not None:
            await open_safety_case(session, trip, now)
        await session.commit()
        return trip, withdrawn
    current = await load(session, trip_id)
    raise InvalidTransition(refusal(Move.cancel, current.status), trip_status=current.status.value)
