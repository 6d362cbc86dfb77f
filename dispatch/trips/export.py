"""Trips and offers in the personal-data exports (GET /v1/drivers/me/export, /v1/riders/me/export).

The composition root installs these as export sections (`server.exports`); reputation, which
assembles the exports, never reads the trips table itself. Ids and times are left to the export's
JSON encoder; trips are already in their wire form.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.trips import views
from dispatch.trips.models import Offer, Trip, TripRequestKey

# A driver's export is their view of each trip, which never names the rider's account (it is the
# rider's data, and next to the trip ids of the ratings it would undo the raters' pseudonyms in
# one file). The driver's own name and vehicle are in the export's account section already.
_NOT_THE_DRIVERS = {"rider_id", "driver"}


async def trips_driven(*, session: AsyncSession, driver_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every trip the driver held, as the wire shows it (without the rider), oldest first."""
    trips = await session.scalars(
        select(Trip).where(Trip.driver_id == driver_id).order_by(Trip.requested_at, Trip.id)
    )
    driven = []
    for trip in trips:
        out = (await views.views(session=session, trip=trip)).driver
        driven.append(
            {
                **out.model_dump(mode="json", exclude=_NOT_THE_DRIVERS),
                "service_class": trip.service_class,
                "region": trip.region,
            }
        )
    return driven


async def offers_received(*, session: AsyncSession, driver_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every offer made to the driver, whatever became of it, with its figures and `why`."""
    offers = await session.scalars(
        select(Offer).where(Offer.driver_id == driver_id).order_by(Offer.created_at, Offer.id)
    )
    return [
        {
            "id": offer.id,
            "trip_id": offer.trip_id,
            "status": offer.status.value,
            "created_at": offer.created_at,
            "expires_at": offer.expires_at,
            "responded_at": offer.responded_at,
            "pickup_distance_m": offer.pickup_distance_m,
            "pickup_eta_s": offer.pickup_eta_s,
            "idle_s": offer.idle_s,
            "cost": offer.cost,
            "why": offer.why,
        }
        for offer in offers
    ]


async def trips_requested(*, session: AsyncSession, rider_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every trip the rider asked for, as the wire shows it to them, oldest first."""
    trips = await session.scalars(
        select(Trip).where(Trip.rider_id == rider_id).order_by(Trip.requested_at, Trip.id)
    )
    # The PIN is a key for one pickup, not a record of the rider's: never in a file.
    return [
        (await views.views(session=session, trip=trip))
        .rider.model_copy(update={"pin": None})
        .model_dump(mode="json")
        for trip in trips
    ]


async def idempotency_keys(*, session: AsyncSession, rider_id: uuid.UUID) -> list[dict[str, Any]]:
    """The Idempotency-Keys the rider's app sent with trip requests, and the trip each made."""
    keys = await session.scalars(
        select(TripRequestKey)
        .where(TripRequestKey.rider_id == rider_id)
        .order_by(TripRequestKey.created_at, TripRequestKey.key)
    )
    return [
        {
            "key": row.key,
            "trip_id": row.trip_id,
            "request_sha256": row.request_sha256,
            "created_at": row.created_at,
        }
        for row in keys
    ]
