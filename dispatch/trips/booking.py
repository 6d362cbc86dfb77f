"""Booking a ride: quotes and trip requests, with their Idempotency-Keys; a request commits once
or not at all."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import fares
from bargaining import service as bargaining_service
from bargaining.models import AgreementVersion
from dispatch.locations.geometry import geography_point
from dispatch.states import TripStatus
from dispatch.trips.exceptions import BadIdempotencyKey, IdempotencyKeyReused, RiderHasOpenTrip
from dispatch.trips.models import Trip, TripRequestKey
from dispatch.trips.queries import load, open_trip_of_rider
from dispatch.trips.schemas import QuoteOut, TripAsk

MAX_IDEMPOTENCY_KEY_LENGTH = 255


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


def constraint_name(exc: IntegrityError) -> str | None:
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
    return await load(session, row.trip_id)


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
        if constraint_name(exc) == "uq_trip_open_rider_id":
            open_trip = await open_trip_of_rider(session=session, rider_id=rider_id)
            raise RiderHasOpenTrip(
                "Finish or cancel the trip under way before asking for another",
                trip_id=str(open_trip.id) if open_trip else None,
            ) from exc
        raise
    return trip, True
