"""Domain operations on trips and offers; every status change is one conditional UPDATE.

Each operation commits once or not at all. Pushing frames to sockets happens after the commit
(`dispatch.trips.push`): a lost push is repaired by the state a client gets on (re)connect.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, case, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import fares
from bargaining import service as bargaining_service
from bargaining.impact import MeteredTrip
from bargaining.models import AgreementVersion
from bargaining.terms import money_str, plain_str
from coop.auth import Principal, Role
from coop.errors import InvalidTransition
from coop.geo import haversine_m
from dispatch.locations import service as locations_service
from dispatch.locations.geometry import geography_point, position_of
from dispatch.states import (
    DRIVER_OPEN,
    RIDER_OPEN,
    TRANSITIONS,
    Move,
    OfferStatus,
    TripStatus,
    TripTimeout,
    refusal,
)
from dispatch.trips import meter, reviews
from dispatch.trips.exceptions import (
    BadIdempotencyKey,
    DriverBusy,
    DriverNotActive,
    IdempotencyKeyReused,
    NotAtPickup,
    NotYourOffer,
    NotYourTrip,
    OfferExpired,
    OfferNotFound,
    RiderHasOpenTrip,
    TripNotFound,
)
from dispatch.trips.models import CancelledBy, Offer, Trip, TripRequestKey
from dispatch.trips.schemas import (
    FareOut,
    QuoteOut,
    TripAsk,
    TripDriverOut,
    TripOut,
    TripRiderOut,
    VehicleOut,
)
from drivers.models import Driver, DriverStatus
from reputation import service as reputation_service
from riders.models import Rider

MAX_IDEMPOTENCY_KEY_LENGTH = 255
# `arrived` and the cancellation fee read the driver's last position; one older than this says
# nothing about where they are now.
POSITION_FRESH_S = 60
# "Approaching" (docs/dispatch.md, "Cancelling"): at least this much closer to the pickup, in a
# straight line, than when the driver was offered the trip.
APPROACH_MIN_PROGRESS_M = 100


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TripViews:
    """One trip as each party sees it. The rider's view is the whole trip; the driver's never
    holds the rider's account id, name or any other stable identifier of the rider (with the
    trip ids of their ratings it would unmask the raters): only the pickup and the first name
    the rider chose to share."""

    rider: TripOut
    driver: TripOut

    def for_party(self, principal: Principal) -> TripOut:
        return self.rider if principal.role is Role.rider else self.driver


async def views(*, session: AsyncSession, trip: Trip) -> TripViews:
    """The trip as docs/protocol.md shows it, with the driver and vehicle once assigned."""
    driver_out = None
    if trip.driver_id is not None:
        driver = await session.get(Driver, trip.driver_id)
        if driver is not None:
            driver_out = TripDriverOut(
                id=driver.id,
                name=driver.name,
                vehicle=VehicleOut(
                    plate=driver.vehicle.plate,
                    seats=driver.vehicle.seats,
                    wheelchair_accessible=driver.vehicle.wheelchair_accessible,
                ),
            )
    rider_view = TripOut(
        id=trip.id,
        status=trip.status.value,
        rider_id=trip.rider_id,
        driver_id=trip.driver_id,
        pickup=position_of(trip.pickup),
        dropoff=position_of(trip.dropoff),
        wheelchair_accessible=trip.wheelchair_accessible,
        requested_at=trip.requested_at,
        assigned_at=trip.assigned_at,
        arrived_at=trip.arrived_at,
        started_at=trip.started_at,
        ended_at=trip.ended_at,
        quote=QuoteOut.model_validate(trip.quote),
        fare=FareOut.model_validate(trip.fare) if trip.fare is not None else None,
        cancel_reason=trip.cancel_reason,
        cancelled_by=trip.cancelled_by.value if trip.cancelled_by else None,
        cancellation_fee=(
            money_str(trip.cancellation_fee) if trip.cancellation_fee is not None else None
        ),
        cancellation_fee_reason=trip.cancellation_fee_reason,
        matching_deadline_at=trip.matching_deadline_at,
        driver=driver_out,
        implausible_positions=trip.implausible_positions,
        fare_capped=trip.fare_capped,
        fare_cap_reason=trip.fare_cap_reason,
        timed_out=trip.timed_out.value if trip.timed_out is not None else None,
    )
    first_name = await session.scalar(
        select(Rider.shared_first_name).where(Rider.id == trip.rider_id)
    )
    driver_view = rider_view.model_copy(
        update={"rider_id": None, "rider": TripRiderOut(first_name=first_name)}
    )
    return TripViews(rider=rider_view, driver=driver_view)


async def view_for(*, session: AsyncSession, trip: Trip, principal: Principal) -> TripOut:
    """The trip as the caller (its rider or its driver) may see it."""
    return (await views(session=session, trip=trip)).for_party(principal)


async def _load(session: AsyncSession, trip_id: uuid.UUID) -> Trip:
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
    trip = await _load(session, trip_id)
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
            Trip.status == TripStatus.completed, Trip.ended_at >= since
        )
    )
    return [
        MeteredTrip(service_class=row[0], distance_m=row[1] or 0, duration_s=row[2] or 0)
        for row in rows
    ]


# --- quotes and requests -------------------------------------------------------------------


async def _agreement_in_force(session: AsyncSession, at: datetime) -> AgreementVersion:
    # No version in force is bargaining's 503 `no_agreement_in_force`: nothing can be priced.
    return await bargaining_service.in_force(session=session, at=at)


async def quote(
    *,
    session: AsyncSession,
    ask: TripAsk,
    now: datetime,
    duration: fares.RouteDuration | None = None,
) -> QuoteOut:
    """The expected fare under the agreement in force now, the route's duration from the
    travel-time model (`duration`; without it, the model's prior)."""
    agreement = await _agreement_in_force(session, now)
    return QuoteOut.model_validate(_quote(agreement, ask, duration))


def _quote(
    agreement: AgreementVersion, ask: TripAsk, duration: fares.RouteDuration | None
) -> dict[str, object]:
    terms = agreement.terms
    service_class = fares.service_class_for(terms, wheelchair_accessible=ask.wheelchair_accessible)
    return fares.quote(
        terms,
        agreement_version=agreement.version,
        service_class=service_class,
        pickup_lat=ask.pickup.lat,
        pickup_lon=ask.pickup.lon,
        dropoff_lat=ask.dropoff.lat,
        dropoff_lon=ask.dropoff.lon,
        duration=duration,
    ).to_wire()


def check_idempotency_key(key: str | None) -> str | None:
    """The header's value, if it is one a client may send (1..255 visible ASCII characters)."""
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or not all(
        "!" <= char <= "~" for char in key
    ):
        raise BadIdempotencyKey(
            f"An Idempotency-Key is 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters "
            "(a UUID is a good choice)"
        )
    return key


def _fingerprint(ask: TripAsk) -> str:
    canonical = json.dumps(ask.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint an IntegrityError broke, as PostgreSQL reports it."""
    cause = getattr(exc.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None) or getattr(exc.orig, "constraint_name", None)
    return name if isinstance(name, str) else None


async def _replay(
    session: AsyncSession, rider_id: uuid.UUID, key: str, fingerprint: str
) -> Trip | None:
    row = await session.scalar(
        select(TripRequestKey).where(TripRequestKey.rider_id == rider_id, TripRequestKey.key == key)
    )
    if row is None:
        return None
    if row.request_sha256 != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key already named a different trip request; use a new key "
            "for a new request"
        )
    return await _load(session, row.trip_id)


async def request(
    *,
    session: AsyncSession,
    rider_id: uuid.UUID,
    ask: TripAsk,
    region: str,
    idempotency_key: str | None,
    now: datetime,
    duration: fares.RouteDuration | None = None,
) -> tuple[Trip, bool]:
    """Creates a trip request (or finds the one this Idempotency-Key made): (trip, created).
    Its quote's duration comes from `duration` (the travel-time model), as `quote`'s does."""
    fingerprint = _fingerprint(ask)
    if idempotency_key is not None:
        earlier = await _replay(session, rider_id, idempotency_key, fingerprint)
        if earlier is not None:
            return earlier, False
    agreement = await _agreement_in_force(session, now)
    terms = agreement.terms
    trip = Trip(
        id=uuid.uuid4(),
        rider_id=rider_id,
        status=TripStatus.requested,
        region=region,
        pickup=geography_point(ask.pickup.lat, ask.pickup.lon),
        dropoff=geography_point(ask.dropoff.lat, ask.dropoff.lon),
        wheelchair_accessible=ask.wheelchair_accessible,
        service_class=fares.service_class_for(
            terms, wheelchair_accessible=ask.wheelchair_accessible
        ),
        agreement_version=agreement.version,
        currency=terms.currency,
        quote=_quote(agreement, ask, duration),
        requested_at=now,
        matching_deadline_at=now + timedelta(seconds=terms.dispatch.max_wait_s),
    )
    session.add(trip)
    try:
        await session.flush()
        if idempotency_key is not None:
            session.add(
                TripRequestKey(
                    rider_id=rider_id,
                    key=idempotency_key,
                    request_sha256=fingerprint,
                    trip_id=trip.id,
                    created_at=now,
                )
            )
            await session.flush()
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        # A concurrent retry with the same key won the race: answer what it created.
        if idempotency_key is not None:
            earlier = await _replay(session, rider_id, idempotency_key, fingerprint)
            if earlier is not None:
                return earlier, False
        if _constraint(exc) == "uq_trip_open_rider_id":
            open_trip = await open_trip_of_rider(session=session, rider_id=rider_id)
            raise RiderHasOpenTrip(
                "Finish or cancel the trip under way before asking for another",
                trip_id=str(open_trip.id) if open_trip else None,
            ) from exc
        raise
    return trip, True


# --- offers --------------------------------------------------------------------------------


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
    *, session: AsyncSession, offer_id: uuid.UUID, driver_id: uuid.UUID, now: datetime
) -> Trip:
    """The driver takes the offered trip: the offer and the trip change together or not at all."""
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
            return await _load(session, offer.trip_id)
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
        if _constraint(exc) == "uq_trip_open_driver_id":
            raise DriverBusy("Finish the trip you hold before accepting another") from exc
        raise
    if trip is None:
        await session.rollback()
        raise OfferExpired("The trip is no longer waiting for a driver")
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


async def _withdraw_pending(
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
    withdrawn = await _withdraw_pending(session, [trip.id for trip in trips], now, "unfulfilled")
    await session.commit()
    return trips, withdrawn


# --- the driver's moves --------------------------------------------------------------------


async def _refuse(
    session: AsyncSession, trip_id: uuid.UUID, driver_id: uuid.UUID, move: Move
) -> None:
    """Raises the right problem for a conditional UPDATE that changed nothing."""
    await session.rollback()
    trip = await _load(session, trip_id)
    if trip.driver_id != driver_id:
        raise NotYourTrip("Only the trip's driver may do this")
    raise InvalidTransition(refusal(move, trip.status), trip_status=trip.status.value)


async def advance(
    *,
    session: AsyncSession,
    trip_id: uuid.UUID,
    driver_id: uuid.UUID,
    move: Move,
    now: datetime,
) -> Trip:
    """`arrive` or `start`: one conditional UPDATE on (trip, its driver, the expected status)."""
    if move not in (Move.arrive, Move.start):
        raise ValueError(f"advance() does not make the {move} move")
    transition = TRANSITIONS[move]
    if move is Move.arrive:
        current = await _load(session, trip_id)
        if current.driver_id == driver_id and current.status in transition.sources:
            await _require_at_pickup(session, current, driver_id, now)
    trip = await session.scalar(
        update(Trip)
        .where(
            Trip.id == trip_id,
            Trip.driver_id == driver_id,
            Trip.status.in_(transition.sources),
        )
        .values({"status": transition.target, transition.stamp: now})
        .returning(Trip)
        .execution_options(populate_existing=True)
    )
    if trip is None:
        await _refuse(session, trip_id, driver_id, move)
    assert trip is not None
    await session.commit()
    return trip


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


async def _where_from_pickup(
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


async def _require_at_pickup(
    session: AsyncSession, trip: Trip, driver_id: uuid.UUID, now: datetime
) -> None:
    """`arrived` only from within the agreement's `dispatch.arrival_radius_m` of the pickup."""
    agreement = await bargaining_service.get_version(
        session=session, version=trip.agreement_version
    )
    radius_m = agreement.terms.dispatch.arrival_radius_m
    where = await _where_from_pickup(session, trip, driver_id, radius_m, now)
    if where.at_pickup:
        return
    await session.rollback()
    if where.distance_m is None:
        raise NotAtPickup(
            f"No position of yours was received in the last {POSITION_FRESH_S} s; send your "
            "location, then say you have arrived",
            distance_m=None,
            arrival_radius_m=radius_m,
        )
    if where.reanchored_at is not None:
        raise NotAtPickup(
            f"Your positions were believed only as a new start at "
            f"{where.reanchored_at.isoformat()} (after positions that implied an impossible "
            "move), since you were offered this trip: they do not show you driving to the "
            "pickup, so 'arrived' cannot be accepted on this trip",
            distance_m=round(where.distance_m),
            arrival_radius_m=radius_m,
            reanchored_at=where.reanchored_at.isoformat(),
        )
    raise NotAtPickup(
        f"Your last position is {round(where.distance_m)} m from the pickup; 'arrived' is "
        f"accepted within {radius_m} m (the agreement's dispatch.arrival_radius_m)",
        distance_m=round(where.distance_m),
        arrival_radius_m=radius_m,
    )


async def complete(
    *,
    session: AsyncSession,
    trip_id: uuid.UUID,
    driver_id: uuid.UUID,
    now: datetime,
    time_scale: float = 1.0,
    metered_until: datetime | None = None,
    timed_out: TripTimeout | None = None,
) -> Trip:
    """Ends the ride: meters the trail, prices it with the trip's agreement version, and hands
    reputation the rateable-trip record, all in one transaction. A ride the service ends itself
    (`timed_out`) is metered only up to `metered_until`, the plausible end it outlasted."""
    metered_until = now if metered_until is None else min(metered_until, now)
    transition = TRANSITIONS[Move.complete]
    current = await _load(session, trip_id)
    if current.driver_id != driver_id:
        raise NotYourTrip("Only the trip's driver may do this")
    if current.status not in transition.sources or current.started_at is None:
        raise InvalidTransition(
            refusal(Move.complete, current.status), trip_status=current.status.value
        )
    points = await locations_service.trail_fixes(
        session=session, trip_id=trip_id, since=current.started_at, until=metered_until
    )
    # `time_scale` is 1 but in a sped-up demo (COOP_METER_TIME_SCALE): its minutes are paid,
    # and its cars' moves are judged by the same clock (dispatch.trips.meter).
    duration_s = round(meter.duration_s(current.started_at, metered_until) * time_scale)
    agreement = await bargaining_service.get_version(
        session=session, version=current.agreement_version
    )
    terms = agreement.terms
    reading = meter.read(
        [meter.TrailPoint(p.lat, p.lon, p.recorded_at, p.segment_start) for p in points],
        max_speed_kmh=terms.dispatch.max_plausible_speed_kmh,
        duration_s=duration_s,
        time_scale=time_scale,
    )
    metered = fares.price_trip(
        terms,
        agreement_version=current.agreement_version,
        service_class=current.service_class,
        distance_m=reading.distance_m,
        duration_s=duration_s,
    )
    quote_total = Decimal(str(current.quote["total"]))
    fare = fares.cap_to_quote(
        terms, metered, service_class=current.service_class, quote_total=quote_total
    )
    fare_wire = fare.to_wire()
    if reading.distance_capped:
        fare_wire["trail_distance_m"] = reading.trail_distance_m
    cap_reason = (
        _fare_cap_reason(
            fare=fare,
            quote_total=quote_total,
            percent=terms.fares[current.service_class].max_over_quote_percent,
            service_class=current.service_class,
            reading=reading,
            max_speed_kmh=terms.dispatch.max_plausible_speed_kmh,
            implausible=current.implausible_positions + reading.implausible,
        )
        if fare.capped
        else None
    )
    distance_m = reading.distance_m
    review_reason = reviews.reason(
        capped=fare.capped,
        distance_m=distance_m,
        route_distance_m=int(current.quote["distance_m"]),
        implausible=current.implausible_positions + reading.implausible,
    )
    trip = await session.scalar(
        update(Trip)
        .where(
            Trip.id == trip_id,
            Trip.driver_id == driver_id,
            Trip.status.in_(transition.sources),
        )
        .values(
            status=transition.target,
            ended_at=now,
            distance_m=distance_m,
            duration_s=duration_s,
            fare=fare_wire,
            fare_total=fare.total,
            driver_earnings=fare.driver_earnings,
            coop_commission=fare.coop_commission,
            fare_capped=fare.capped,
            fare_cap_reason=cap_reason,
            fare_review_reason=review_reason,
            timed_out=timed_out,
            # Reports the ingest let through but the meter did not believe (a driver
            # reporting through two connections at once) join those counted as they came.
            implausible_positions=Trip.implausible_positions + reading.implausible,
        )
        .returning(Trip)
        .execution_options(populate_existing=True)
    )
    if trip is None:
        await _refuse(session, trip_id, driver_id, Move.complete)
    assert trip is not None
    await reputation_service.record_rateable_trip(
        session=session,
        trip_id=trip.id,
        rider_id=trip.rider_id,
        driver_id=driver_id,
        completed_at=now,
        now=now,
    )
    await session.commit()
    return trip


def _fare_cap_reason(
    *,
    fare: fares.Fare,
    quote_total: Decimal,
    percent: Decimal,
    service_class: str,
    reading: meter.Reading,
    max_speed_kmh: int,
    implausible: int,
) -> str:
    """Why the fare was capped, in words for the rider's receipt and the driver's record."""
    assert fare.metered_total is not None
    currency = fare.currency
    reason = (
        f"The meter said {money_str(fare.metered_total)} {currency}, more than "
        f"{plain_str(percent)} % above the quote of {money_str(quote_total)} {currency}; "
        f"the agreement (fares.{service_class}.max_over_quote_percent) caps the fare at "
        f"{money_str(fare.total)} {currency}."
    )
    if reading.distance_capped:
        reason += (
            f" The distance was also limited to {reading.distance_cap_m} m, what "
            f"{fare.duration_s} s allow at {max_speed_kmh} km/h."
        )
    if implausible:
        reason += f" {implausible} reported positions were not believed (an impossible speed)."
    return reason


# --- cancellation --------------------------------------------------------------------------


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
    where = await _where_from_pickup(session, trip, trip.driver_id, radius_m, now)
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
) -> tuple[Trip, list[ClosedOffer]]:
    """Calls the trip off. A rider pays the agreement's fee after its free period (all of it to
    the driver); a driver's cancellation costs the rider nothing."""
    transition = TRANSITIONS[Move.cancel]
    # The fee depends on the status seen, so the UPDATE is conditional on that status; statuses
    # only move forward, so a lost race is retried at most once per later status.
    for _ in range(len(transition.sources) + 1):
        current = await _load(session, trip_id)
        party = party_to(current, principal)
        if current.status not in transition.sources:
            raise InvalidTransition(
                refusal(Move.cancel, current.status), trip_status=current.status.value
            )
        fee: Decimal | None = None
        fee_reason: str | None = None
        if party is CancelledBy.rider:
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
        withdrawn = await _withdraw_pending(session, [trip.id], now, "cancelled")
        await session.commit()
        return trip, withdrawn
    current = await _load(session, trip_id)
    raise InvalidTransition(refusal(Move.cancel, current.status), trip_status=current.status.value)
