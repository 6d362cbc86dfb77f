"""Booking a ride: quotes and trip requests, with their Idempotency-Keys; a request commits once
or not at all."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import fares
from bargaining import service as bargaining_service
from bargaining.models import AgreementVersion
from bargaining.terms import money_str
from coop.jurisdiction import Profile
from coop.levies import charges
from dispatch.locations.geometry import geography_point
from dispatch.states import TripStatus
from dispatch.trips import consent, fare_caps
from dispatch.trips.exceptions import BadIdempotencyKey, IdempotencyKeyReused, RiderHasOpenTrip
from dispatch.trips.models import Trip, TripRequestKey
from dispatch.trips.queries import load, open_trip_of_rider
from dispatch.trips.schemas import ConsentQuoteOut, QuoteLine, TripAsk, TripRequest

MAX_IDEMPOTENCY_KEY_LENGTH = 255


async def _agreement_in_force(session: AsyncSession, at: datetime) -> AgreementVersion:
    # No version in force is bargaining's 503 `no_agreement_in_force`: nothing can be priced.
    return await bargaining_service.in_force(session=session, at=at)


async def quote(
    *,
    session: AsyncSession,
    rider_id: uuid.UUID,
    ask: TripAsk,
    profile: Profile,
    registrations: dict[str, str],
    now: datetime,
    duration: fares.RouteDuration | None = None,
) -> ConsentQuoteOut:
    """The expected fare under the agreement in force now (the route's duration from the
    travel-time model, `duration`; without it, the model's prior), what the law adds to it, and
    the most the trip can cost, kept as a quote the rider may consent to until it expires."""
    agreement = await _agreement_in_force(session, now)
    wire = _quote(agreement, ask, duration)
    declared = await fare_caps.active_at(
        session=session, lat=ask.pickup.lat, lon=ask.pickup.lon, at=now
    )
    ceiling = (
        None
        if declared is None
        else fare_caps.ceiling(
            declared,
            distance_m=int(str(wire["distance_m"])),
            duration_s=int(str(wire["duration_s"])),
        )
    )
    if ceiling is not None and Decimal(str(wire["total"])) > ceiling:
        wire["total"] = money_str(ceiling)  # the estimate too stays under the law's cap
    # A rider's quotes that lapsed unused are of no more use to anyone.
    await session.execute(
        delete(consent.TripQuote).where(
            consent.TripQuote.rider_id == rider_id,
            consent.TripQuote.trip_id.is_(None),
            consent.TripQuote.expires_at <= now,
        )
    )
    row = await consent.record(
        session=session,
        rider_id=rider_id,
        ask=ask.model_dump(mode="json"),
        quote=wire,
        terms=agreement.terms,
        service_class=fares.service_class_for(
            agreement.terms, wheelchair_accessible=ask.wheelchair_accessible
        ),
        profile=profile,
        now=now,
        ceiling=ceiling,
    )
    await session.commit()
    estimate = charges(profile, Decimal(str(wire["total"])), registrations)
    lines = [
        QuoteLine(
            kind="fare_estimate",
            code="fare",
            name="Fare (estimate)",
            name_fr="Prix de la course (estimation)",
            amount=money_str(estimate.fare),
        ),
        *(
            QuoteLine(
                kind=levy.kind,
                code=levy.code,
                name=levy.name.en,
                name_fr=levy.name.fr,
                amount=money_str(levy.amount),
                percent=None if levy.percent is None else f"{levy.percent.normalize():f}",
            )
            for levy in estimate.levies
        ),
    ]
    return ConsentQuoteOut.model_validate(
        {
            **wire,
            "quote_id": row.id,
            "expires_at": row.expires_at,
            "max_fare": money_str(row.max_fare),
            "max_total": money_str(row.max_total),
            "lines": lines,
            "estimated_total": money_str(estimate.total),
        }
    )


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


def _fingerprint(body: TripRequest) -> str:
    # Without an absent quote_id, so a request fingerprinted before quotes existed still matches.
    canonical = json.dumps(
        body.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":")
    )
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
    body: TripRequest,
    profile: Profile,
    region: str,
    idempotency_key: str | None,
    now: datetime,
    duration: fares.RouteDuration | None = None,
) -> tuple[Trip, bool]:
    """Creates a trip request (or finds the one this Idempotency-Key made): (trip, created).

    With `body.quote_id`, the request is the rider's consent to that quote: the trip takes the
    quote as it was shown (docs/jurisdiction.md). Without one, where the jurisdiction requires
    consent it is `409 quote_required`; elsewhere the trip is quoted now, its duration from
    `duration` (the travel-time model), as `quote`'s is."""
    ask = body.ask()
    fingerprint = _fingerprint(body)
    if idempotency_key is not None:
        earlier = await _replay(session, rider_id, idempotency_key, fingerprint)
        if earlier is not None:
            return earlier, False
    agreement = await _agreement_in_force(session, now)
    terms = agreement.terms
    consented: consent.TripQuote | None = None
    if body.quote_id is not None:
        try:
            consented = await consent.consent(
                session=session,
                rider_id=rider_id,
                quote_id=body.quote_id,
                ask=ask.model_dump(mode="json"),
                now=now,
            )
        except consent.QuoteUsed:
            # A retry with the same Idempotency-Key that lost the race to its twin: its trip.
            await session.rollback()
            if idempotency_key is not None:
                earlier = await _replay(session, rider_id, idempotency_key, fingerprint)
                if earlier is not None:
                    return earlier, False
            raise
        if consented.agreement_version != agreement.version:
            raise consent.QuoteExpired(
                "A new version of the agreement came into force since this quote: ask for a new one"
            )
    elif profile.consent.quote_required:
        raise consent.QuoteRequired(
            "Ask POST /v1/quotes, show the rider its maximum price, and send its quote_id "
            "with their consent"
        )
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
        quote=consented.quote if consented is not None else _quote(agreement, ask, duration),
        requested_at=now,
        matching_deadline_at=now + timedelta(seconds=terms.dispatch.max_wait_s),
    )
    session.add(trip)
    try:
        await session.flush()
        if consented is not None:
            consent.bind(consented, trip_id=trip.id, now=now)
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
