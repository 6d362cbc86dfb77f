"""Rules about trips that more than one domain reads, each named once, in SQL (for queries) and,
where a loaded row is judged, in Python: the two say the same thing.

They differ on purpose: a trip *pays its driver* when it was completed or when its rider
cancelled it with a fee (all of it the driver's), and that is what pay posts, the floor and
patronage count, and what has a receipt; a trip *was ridden* only when completed, and that is
what the day's figures count and what bargaining re-prices (a cancellation fee has no meter).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_

from dispatch.states import TripStatus
from dispatch.trips.models import Trip


def pays_its_driver() -> ColumnElement[bool]:
    """A trip that pays its driver: assigned, and completed or cancelled with a fee."""
    return and_(
        Trip.driver_id.is_not(None),
        Trip.assigned_at.is_not(None),
        or_(
            Trip.status == TripStatus.completed,
            and_(Trip.status == TripStatus.cancelled, Trip.cancellation_fee > 0),
        ),
    )


def paid_its_driver(trip: Trip) -> bool:
    """`pays_its_driver`, for a loaded row."""
    if trip.driver_id is None or trip.assigned_at is None:
        return False
    return trip.status is TripStatus.completed or (
        trip.status is TripStatus.cancelled and (trip.cancellation_fee or 0) > 0
    )


def was_ridden() -> ColumnElement[bool]:
    """A trip ridden to its end: completed (a cancelled one, even with a fee, was not)."""
    return Trip.status == TripStatus.completed
