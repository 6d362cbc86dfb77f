"""Itemised receipts of a trip: for its rider (no driver account id), its driver (no rider id)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import fares
from bargaining import service as bargaining_service
from bargaining.terms import money_str
from coop.auth import Principal
from coop.jurisdiction import Profile
from coop.levies import charges
from dispatch.trips.consent import TripQuote
from dispatch.trips.exceptions import TripNotFound
from dispatch.trips.models import Trip, TripStatus
from dispatch.trips.queries import party_to
from dispatch.trips.rules import paid_its_driver
from pay.exceptions import NoReceipt
from pay.schemas import DuesOut, ReceiptOut, TaxOut, receipt_items


async def _consented_max(session: AsyncSession, trip_id: uuid.UUID) -> str | None:
    """The maximum the rider consented to for this trip, if it was requested on a quote."""
    found = await session.scalar(select(TripQuote.max_total).where(TripQuote.trip_id == trip_id))
    return None if found is None else money_str(found)


def _billed(
    fare_total: Decimal, profile: Profile, registrations: dict[str, str], *, trip: bool
) -> dict[str, object]:
    """What the rider was billed for `fare_total`: the jurisdiction's dues and taxes on a trip
    (`coop.levies`); a cancellation fee is no trip and bears none here."""
    if not trip:
        return {"dues": None, "taxes": [], "amount_billed": money_str(fare_total)}
    billed = charges(profile, fare_total, registrations)
    dues = next((levy for levy in billed.levies if levy.kind == "dues"), None)
    return {
        "dues": None
        if dues is None
        else DuesOut(name=dues.name.en, name_fr=dues.name.fr, amount=money_str(dues.amount)),
        "taxes": [
            TaxOut(
                name=tax.name.en,
                name_fr=tax.name.fr,
                percent=f"{(tax.percent or Decimal(0)).normalize():f}",
                amount=money_str(tax.amount),
                registration=tax.registration,
            )
            for tax in billed.taxes
        ],
        "amount_billed": money_str(billed.total),
    }


async def receipt(
    *,
    session: AsyncSession,
    trip_id: uuid.UUID,
    principal: Principal,
    profile: Profile,
    registrations: dict[str, str],
) -> ReceiptOut:
    trip = await session.get(Trip, trip_id)
    if trip is None:
        raise TripNotFound(f"No trip {trip_id}")
    copy_for = party_to(trip, principal, to="read its receipt").value
    if not paid_its_driver(trip):
        raise NoReceipt(
            f"The trip is {trip.status.value}: only a completed trip, or a cancellation that "
            "charged a fee, has a receipt",
            trip_status=trip.status.value,
        )
    agreement = await bargaining_service.get_version(
        session=session, version=trip.agreement_version
    )
    common = {
        "trip_id": trip.id,
        "copy_for": copy_for,
        "requested_at": trip.requested_at,
        "accepted_at": trip.assigned_at,
        "started_at": trip.started_at,
        "service_class": trip.service_class,
        "currency": trip.currency,
        "agreement_version": agreement.version,
        "agreement_sha256": agreement.sha256,
        "max_total": await _consented_max(session, trip.id),
    }
    if trip.status is TripStatus.completed:
        assert trip.ended_at is not None and trip.fare_total is not None
        distance_m, duration_s = trip.distance_m or 0, trip.duration_s or 0
        # A fare capped at its quote was charged the cap (trust: `fares.cap_to_quote`): the items
        # are the meter's, the total and its split the cap's.
        items = fares.itemise(
            agreement.terms,
            service_class=trip.service_class,
            distance_m=distance_m,
            duration_s=duration_s,
            capped_total=trip.fare_total if trip.fare_capped else None,
        )
        # The stored fare is what was charged; the items are worked out again from its terms.
        assert items.total == trip.fare_total, "receipt items disagree with the charged fare"
        quote_total = Decimal(str(trip.quote["total"]))
        cap_percent = agreement.terms.fares[trip.service_class].max_over_quote_percent
        return ReceiptOut.model_validate(
            {
                **common,
                "kind": "trip",
                "ended_at": trip.ended_at,
                "distance_m": distance_m,
                "duration_s": duration_s,
                "items": receipt_items(items),
                "metered": money_str(items.metered.quantize(Decimal("0.0001"))),
                "minimum": money_str(items.minimum),
                "minimum_applied": items.minimum_applied,
                "metered_total": money_str(items.metered_total),
                "quote_total": money_str(quote_total),
                "max_over_quote_percent": f"{cap_percent.normalize():f}",
                "fare_capped": trip.fare_capped,
                "fare_cap_reason": trip.fare_cap_reason,
                "total": money_str(trip.fare_total),
                "commission_percent": f"{items.commission_percent.normalize():f}",
                "commission_cap": (
                    None if items.commission_cap is None else money_str(items.commission_cap)
                ),
                "cap_applied": items.cap_applied,
                "driver_floor": money_str(items.driver_floor),
                "floor_applied": items.floor_applied,
                "commission": money_str(trip.coop_commission or Decimal("0.00")),
                "driver_earnings": money_str(trip.driver_earnings or Decimal("0.00")),
                "cancellation_fee": None,
                **_billed(trip.fare_total, profile, registrations, trip=True),
            }
        )
    # Cancelled with a fee: the fee is the whole receipt, all of it the driver's.
    assert trip.ended_at is not None and trip.cancellation_fee is not None
    fee = money_str(trip.cancellation_fee)
    return ReceiptOut.model_validate(
        {
            **common,
            "kind": "cancellation_fee",
            "ended_at": trip.ended_at,
            "distance_m": None,
            "duration_s": None,
            "items": [],
            "metered": None,
            "minimum": None,
            "minimum_applied": False,
            "metered_total": None,
            "quote_total": None,
            "max_over_quote_percent": None,
            "fare_capped": False,
            "fare_cap_reason": None,
            "total": fee,
            "commission_percent": None,
            "commission_cap": None,
            "cap_applied": False,
            "driver_floor": None,
            "floor_applied": False,
            "commission": "0.00",
            "driver_earnings": fee,
            "cancellation_fee": fee,
            **_billed(trip.cancellation_fee, profile, registrations, trip=False),
        }
    )
