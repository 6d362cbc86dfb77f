"""Safety cases for a person to review (docs/safety.md, "Safety cases"): a rider who cancelled
because the driver or the car did not match what the app showed, and a driver's flag of a
rider. A case is a row of the operators' queue with the alerts' life (acknowledge, notes,
resolve: `dispatch.safety.alerts`); it never acts against anyone by itself: no status changes,
no one is blocked, nothing reaches matching or reputation."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.safety import alerts
from dispatch.safety.models import AlertKind
from dispatch.safety.schemas import FlagReason
from dispatch.trips.exceptions import NotYourTrip
from dispatch.trips.models import Trip
from dispatch.trips.queries import load


async def open_mismatch_case(session: AsyncSession, *, trip: Trip, now: datetime) -> uuid.UUID:
    """The case of a rider's `driver_or_car_does_not_match` cancellation, in the cancellation's
    transaction (`dispatch.trips.cancellation.cancel` calls it through `TripsState`)."""
    alert = await alerts.record(
        session,
        now=now,
        kind=AlertKind.driver_or_car_does_not_match,
        account_id=trip.rider_id,
        role="rider",
        trip=trip,
        position=None,
        detail=None,
        reason=AlertKind.driver_or_car_does_not_match.value,
    )
    return alert.id


async def flag_rider(
    session: AsyncSession,
    *,
    trip_id: uuid.UUID,
    driver_id: uuid.UUID,
    reason: FlagReason,
    note: str | None,
    now: datetime,
) -> uuid.UUID:
    """A driver asks a person to review the rider of one of their trips (any status: a flag
    often follows the ride). Recorded for review only. The caller commits."""
    trip = await load(session, trip_id)
    if trip.driver_id != driver_id:
        raise NotYourTrip("Only the trip's driver may flag its rider")
    alert = await alerts.record(
        session,
        now=now,
        kind=AlertKind.rider_flag,
        account_id=driver_id,
        role="driver",
        trip=trip,
        position=None,
        detail=note,
        reason=reason,
    )
    return alert.id
