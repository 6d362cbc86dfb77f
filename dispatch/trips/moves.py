"""The driver's moves on a trip: `arrived`, `start` and `complete` (metered and priced).

Every status change is one conditional UPDATE; an operation commits once or not at all."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import fares
from bargaining import service as bargaining_service
from bargaining.terms import money_str, plain_str
from coop.errors import InvalidTransition
from dispatch.locations import service as locations_service
from dispatch.locations.geometry import position_of
from dispatch.states import TRANSITIONS, Move, TripTimeout, refusal
from dispatch.trips import fare_caps, meter, reviews
from dispatch.trips import pin as pins
from dispatch.trips.consent import TripQuote
from dispatch.trips.exceptions import NotAtPickup, NotYourTrip
from dispatch.trips.models import Trip
from dispatch.trips.pickup import POSITION_FRESH_S, where_from_pickup
from dispatch.trips.queries import load
from reputation import service as reputation_service


async def _refuse(
    session: AsyncSession, trip_id: uuid.UUID, driver_id: uuid.UUID, move: Move
) -> None:
    """Raises the right problem for a conditional UPDATE that changed nothing."""
    await session.rollback()
    trip = await load(session, trip_id)
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
    pin: str | None = None,
) -> Trip:
    """`arrive` or `start`: one conditional UPDATE on (trip, its driver, the expected status).
    `start` checks the rider's PIN first when the trip has one (dispatch/trips/pin.py)."""
    if move not in (Move.arrive, Move.start):
        raise ValueError(f"advance() does not make the {move} move")
    transition = TRANSITIONS[move]
    if move is Move.arrive:
        current = await load(session, trip_id)
        if current.driver_id == driver_id and current.status in transition.sources:
            await _require_at_pickup(session, current, driver_id, now)
    if move is Move.start:
        await pins.check_at_start(session=session, trip_id=trip_id, driver_id=driver_id, given=pin)
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


async def _require_at_pickup(
    session: AsyncSession, trip: Trip, driver_id: uuid.UUID, now: datetime
) -> None:
    """`arrived` only from within the agreement's `dispatch.arrival_radius_m` of the pickup."""
    agreement = await bargaining_service.get_version(
        session=session, version=trip.agreement_version
    )
    radius_m = agreement.terms.dispatch.arrival_radius_m
    where = await where_from_pickup(session, trip, driver_id, radius_m, now)
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


async def _outside_ceiling(
    session: AsyncSession, trip: Trip, distance_m: int, duration_s: int
) -> tuple[Decimal, str] | None:
    """The lowest ceiling on the fare from outside the agreement, and why: the Minister's
    declared cap at the pickup when the trip was asked for, and the consented maximum."""
    found: list[tuple[Decimal, str]] = []
    pickup = position_of(trip.pickup)
    declared = await fare_caps.active_at(
        session=session, lat=pickup.lat, lon=pickup.lon, at=trip.requested_at
    )
    if declared is not None:
        found.append(
            (
                fare_caps.ceiling(declared, distance_m=distance_m, duration_s=duration_s),
                f"Held at the fare cap the Minister declared ({declared.reference}): the rate "
                f"times {declared.multiplier:f} for this distance and time",
            )
        )
    consented = await session.scalar(select(TripQuote).where(TripQuote.trip_id == trip.id))
    if consented is not None:
        found.append(
            (consented.max_fare, "Held at the maximum fare the rider consented to before the trip")
        )
    return min(found, key=lambda ceiling: ceiling[0]) if found else None


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
    current = await load(session, trip_id)
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
    # Beyond the agreement: the law's declared cap where and when the trip was asked for, and
    # the most the rider consented to (docs/jurisdiction.md).
    held_by = await _outside_ceiling(session, current, reading.distance_m, duration_s)
    if held_by is not None and fare.total > held_by[0]:
        fare = fares.cap_at(terms, fare, total=held_by[0])
    else:
        held_by = None
    fare_wire = fare.to_wire()
    if reading.distance_capped:
        fare_wire["trail_distance_m"] = reading.trail_distance_m
    cap_reason = (
        held_by[1]
        if held_by is not None
        else _fare_cap_reason(
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
