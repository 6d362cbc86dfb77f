"""The PIN at pickup (docs/safety.md, "The PIN at pickup"): at assignment a rider whose policy
asks for one gets four digits the driver does not see; the driver starts the ride only with
them, so a car whose driver cannot give them is not the car that was sent.

The PIN is shown to the rider alone (their view of the trip while it waits for the pickup) and
is erased once the ride starts. It is never logged, audited or exported: no code here names it
in a message, and the problems it raises carry only counts.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, ForeignKey, Index, SmallInteger, String, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bargaining import service as bargaining_service
from coop.db import Base
from coop.errors import Conflict, InvalidTransition, RateLimited
from dispatch.states import TRANSITIONS, Move, TripStatus
from dispatch.trips.exceptions import NotYourTrip
from dispatch.trips.models import Trip
from dispatch.trips.queries import load
from riders.safety import SafetyPolicy, load_safety_preferences

PIN_DIGITS = 4
# Wrong PINs before the driver must wait for the rider's word in the app: enough for a misheard
# digit or two, far too few to guess one of 10,000.
MAX_WRONG_ATTEMPTS = 5
# While the trip waits for its pickup: the PIN has no use before or after.
WAITING_FOR_PICKUP = (TripStatus.assigned, TripStatus.arrived)


class TripPin(Base):
    """The PIN of a trip whose rider's policy asked for one at assignment (no row: none)."""

    __tablename__ = "trip_pin"
    # The PINs still held: what the sweep (`erase_ended`) reads, a handful at any time.
    __table_args__ = (
        Index("ix_trip_pin_held", "trip_id", postgresql_where=text("pin IS NOT NULL")),
    )

    trip_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("trip.id", ondelete="CASCADE"), primary_key=True
    )
    # Null once the ride started: it has done its work, and is kept no longer.
    pin: Mapped[str | None] = mapped_column(String(PIN_DIGITS))
    wrong_attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    # The rider confirmed from the app that this is their car (after the wrong tries ran out).
    rider_confirmed_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PinRequired(Conflict):
    type = "pin_required"
    title = "This ride starts with the rider's PIN"


class WrongPin(Conflict):
    type = "wrong_pin"
    title = "The PIN is not the rider's"


class PinAttemptsExceeded(RateLimited):
    type = "pin_attempts_exceeded"
    title = "Too many wrong PINs: the rider confirms from the app"


class NoPin(Conflict):
    type = "no_pin"
    title = "This trip has no PIN to confirm"


@dataclass(frozen=True)
class PinState:
    """What the trip's parties see of its PIN: the digits (the rider's view only), and whether
    starting needs them now."""

    pin: str | None
    required: bool


NO_PIN = PinState(pin=None, required=False)


def at_night(at: datetime, *, time_zone: str, night_starts: str, night_ends: str) -> bool:
    """Whether `at` falls in the night window (HH:MM to HH:MM, across midnight when the start
    is later) in `time_zone`; an empty window (start = end) is never night."""
    local = at.astimezone(ZoneInfo(time_zone)).time()
    starts, ends = time.fromisoformat(night_starts), time.fromisoformat(night_ends)
    if starts == ends:
        return False
    if starts < ends:
        return starts <= local < ends
    return local >= starts or local < ends


def applies(policy: SafetyPolicy, *, night: bool) -> bool:
    return policy == "always" or (policy == "night" and night)


def new_pin() -> str:
    return f"{secrets.randbelow(10**PIN_DIGITS):0{PIN_DIGITS}d}"


async def issue(*, session: AsyncSession, trip: Trip, time_zone: str, now: datetime) -> bool:
    """At assignment, in the assignment's transaction: a PIN for the trip if its rider's policy
    (or, without one, the agreement's `safety.pin_default`) asks for one now. The caller
    commits. Answers whether one was issued."""
    preferences = await load_safety_preferences(session, trip.rider_id)
    terms = (
        await bargaining_service.get_version(session=session, version=trip.agreement_version)
    ).terms.safety
    policy = preferences.pin or terms.pin_default
    night = at_night(
        now, time_zone=time_zone, night_starts=terms.night_starts, night_ends=terms.night_ends
    )
    if not applies(policy, night=night):
        return False
    # A repeated assignment (a retried accept) keeps the first PIN the rider may have read.
    await session.execute(
        insert(TripPin)
        .values(trip_id=trip.id, pin=new_pin(), wrong_attempts=0, created_at=now)
        .on_conflict_do_nothing(index_elements=[TripPin.trip_id])
    )
    return True


async def state_of(session: AsyncSession, trip: Trip) -> PinState:
    """The trip's PIN as its views show it: the digits only while the trip waits for pickup."""
    if trip.status not in WAITING_FOR_PICKUP:
        return NO_PIN
    row = await session.get(TripPin, trip.id, populate_existing=True)
    if row is None or row.pin is None:
        return NO_PIN
    return PinState(pin=row.pin, required=row.rider_confirmed_at is None)


async def check_at_start(
    *, session: AsyncSession, trip_id: uuid.UUID, driver_id: uuid.UUID, given: str | None
) -> None:
    """Before the ride starts, in the start's transaction: the trip's PIN must be `given`,
    unless it has none or its rider confirmed from the app. Wrong tries are counted (committed
    even though the start is refused); the fifth and later answer `429`."""
    row = await session.scalar(select(TripPin).where(TripPin.trip_id == trip_id).with_for_update())
    if row is None or row.pin is None:
        return
    trip = await load(session, trip_id)
    if trip.driver_id != driver_id or trip.status not in TRANSITIONS[Move.start].sources:
        return  # the start's own refusal (not your trip, invalid transition) answers
    if row.rider_confirmed_at is not None:
        row.pin = None  # the rider vouched for the car; the ride starts in this transaction
        return
    wrong_so_far = row.wrong_attempts
    if wrong_so_far >= MAX_WRONG_ATTEMPTS:
        await session.rollback()
        raise _exceeded()
    if given is None:
        await session.rollback()
        raise PinRequired(
            "Ask the rider for the PIN their app shows, and send it as `pin`",
            attempts_left=MAX_WRONG_ATTEMPTS - wrong_so_far,
        )
    if hmac.compare_digest(given.encode(), row.pin.encode()):
        row.pin = None  # the ride starts in this transaction: the PIN has done its work
        return
    row.wrong_attempts += 1
    wrong = row.wrong_attempts
    await session.commit()
    if wrong >= MAX_WRONG_ATTEMPTS:
        raise _exceeded()
    raise WrongPin(
        "That is not the rider's PIN: check it with them",
        attempts_left=MAX_WRONG_ATTEMPTS - wrong,
    )


async def erase_ended(session: AsyncSession) -> int:
    """Erases the PINs of trips that ended without starting (cancelled, unfulfilled, no-show):
    a start erases its own. Run by the matcher's sweep; the caller commits."""
    erased = await session.execute(
        update(TripPin)
        .where(
            TripPin.pin.is_not(None),
            TripPin.trip_id.in_(
                select(Trip.id).where(
                    Trip.id == TripPin.trip_id, Trip.status.not_in(WAITING_FOR_PICKUP)
                )
            ),
        )
        .values(pin=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(erased, "rowcount", 0) or 0)


def _exceeded() -> PinAttemptsExceeded:
    # Retry-After is the time a rider takes to open the app and confirm; no wait unlocks it.
    return PinAttemptsExceeded(
        f"{MAX_WRONG_ATTEMPTS} wrong PINs: the rider confirms in their app that this is their "
        "car, then the ride can start",
        retry_after_s=30,
    )


async def confirm(
    *, session: AsyncSession, trip_id: uuid.UUID, rider_id: uuid.UUID, now: datetime
) -> Trip:
    """The trip's rider confirms from the app that the car at the curb is theirs: the driver
    may start without the PIN. Repeating it changes nothing."""
    trip = await load(session, trip_id)
    if trip.rider_id != rider_id:
        raise NotYourTrip("Only the trip's rider may confirm its car")
    row = await session.scalar(select(TripPin).where(TripPin.trip_id == trip_id).with_for_update())
    if row is None or row.pin is None:
        await session.rollback()
        raise NoPin("This trip has no PIN waiting: the driver can start without one")
    if trip.status not in WAITING_FOR_PICKUP:
        status = trip.status.value
        await session.rollback()
        raise InvalidTransition(
            f"The trip is {status}: there is no pickup to confirm", trip_status=status
        )
    if row.rider_confirmed_at is None:
        row.rider_confirmed_at = now
    await session.commit()
    return trip
