"""A rider's own trips, past and current, as one paged list (`GET /v1/riders/me/trips`).

One summary per trip, an allow-list of what its rider may see: the trip's times and places,
who drove (the first name the rider greeted them by, never the driver's account id), and what
it cost, to the cent as the receipt has it (`GET /v1/trips/{id}/receipt`, which the item links
to). The whole trip is `GET /v1/trips/{id}`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.terms import money_str
from coop import paging
from coop.geo import Position
from coop.jurisdiction import Profile
from coop.levies import charges
from dispatch.locations.geometry import position_of
from dispatch.states import RIDER_OPEN, TripStatus
from dispatch.trips.models import Trip
from dispatch.trips.rules import paid_its_driver
from dispatch.trips.views import first_name_of
from drivers.models import Driver

LISTING = "riders-me-trips"
ORDER = ((Trip.requested_at, True), (Trip.id, True))

# `?state=`: one status, or `open` (not over yet) or `ended` (over, whatever the end).
StateFilter = Literal[
    "open",
    "ended",
    "requested",
    "assigned",
    "arrived",
    "in_progress",
    "completed",
    "cancelled",
    "unfulfilled",
]


class TripPriceOut(BaseModel):
    """What the trip cost its rider, as its receipt says it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["trip", "cancellation_fee"] = Field(
        description="A ride (`trip`) or a cancellation that charged a fee"
    )
    total: str = Field(
        examples=["10.47"], description="The fare (or the fee): the receipt's `total`"
    )
    amount_billed: str = Field(
        examples=["12.34"],
        description="What the rider was billed: the fare with the jurisdiction's dues and "
        "taxes (the receipt's `amount_billed`); for a fee, the fee",
    )
    currency: str = Field(examples=["CAD"])


class RiderTripItem(BaseModel):
    """One trip in its rider's list."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    status: str
    pickup: Position
    dropoff: Position
    wheelchair_accessible: bool
    requested_at: datetime
    assigned_at: datetime | None
    arrived_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    quote_total: str = Field(examples=["9.40"], description="The fare quoted before the trip")
    currency: str = Field(examples=["CAD"])
    driver_first_name: str | None = Field(
        description="The first name of the driver who accepted the trip; null before that"
    )
    cancelled_by: Literal["rider", "driver"] | None
    timed_out: Literal["no_show", "ride_overrun"] | None
    price: TripPriceOut | None = Field(
        description="What the trip cost: set when it has a receipt (completed, or cancelled "
        "with a fee), else null"
    )
    receipt_url: str | None = Field(
        examples=["/v1/trips/6f1c2b9e-0d7a-4f4e-9a35-2b1c3d4e5f60/receipt"],
        description="The path of the trip's itemised receipt, when it has one",
    )


def _price(trip: Trip, profile: Profile, registrations: dict[str, str]) -> TripPriceOut | None:
    """The receipt's figures, by the receipt's rule: a ride bears the law's dues and taxes, a
    cancellation fee none (pay/receipts.py)."""
    if not paid_its_driver(trip):
        return None
    if trip.status is TripStatus.completed:
        assert trip.fare_total is not None
        billed = charges(profile, trip.fare_total, registrations).total
        return TripPriceOut(
            kind="trip",
            total=money_str(trip.fare_total),
            amount_billed=money_str(billed),
            currency=trip.currency,
        )
    fee = trip.cancellation_fee or Decimal(0)
    return TripPriceOut(
        kind="cancellation_fee",
        total=money_str(fee),
        amount_billed=money_str(fee),
        currency=trip.currency,
    )


def item_of(
    trip: Trip, driver_name: str | None, profile: Profile, registrations: dict[str, str]
) -> RiderTripItem:
    price = _price(trip, profile, registrations)
    return RiderTripItem(
        id=trip.id,
        status=trip.status.value,
        pickup=position_of(trip.pickup),
        dropoff=position_of(trip.dropoff),
        wheelchair_accessible=trip.wheelchair_accessible,
        requested_at=trip.requested_at,
        assigned_at=trip.assigned_at,
        arrived_at=trip.arrived_at,
        started_at=trip.started_at,
        ended_at=trip.ended_at,
        quote_total=str(trip.quote["total"]),
        currency=trip.currency,
        driver_first_name=None if driver_name is None else first_name_of(driver_name),
        cancelled_by=trip.cancelled_by.value if trip.cancelled_by else None,
        timed_out=trip.timed_out.value if trip.timed_out is not None else None,
        price=price,
        receipt_url=None if price is None else f"/v1/trips/{trip.id}/receipt",
    )


async def rider_trips(
    *,
    session: AsyncSession,
    rider_id: uuid.UUID,
    profile: Profile,
    registrations: dict[str, str],
    limit: int,
    cursor: str | None,
    state: StateFilter | None = None,
) -> tuple[list[RiderTripItem], str | None]:
    """One page of the rider's own trips, newest request first, and the cursor of the next
    page (None on the last). A keyset on (requested_at, id): a trip requested between two
    pages comes before the first page, so it never shifts the pages that follow."""
    after = None if cursor is None else paging.decode_cursor(cursor, LISTING, (datetime, uuid.UUID))
    query = (
        select(Trip, Driver.name)
        .outerjoin(Driver, Driver.id == Trip.driver_id)
        .where(Trip.rider_id == rider_id)
        .order_by(*(column.desc() for column, _ in ORDER))
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(paging.after_key(ORDER, after))
    if state == "open":
        query = query.where(Trip.status.in_(RIDER_OPEN))
    elif state == "ended":
        query = query.where(Trip.status.not_in(RIDER_OPEN))
    elif state is not None:
        query = query.where(Trip.status == TripStatus(state))
    rows = [(row[0], row[1]) for row in await session.execute(query)]
    page, next_cursor = paging.page_of(
        rows, limit, lambda row: (row[0].requested_at, row[0].id), LISTING
    )
    return [item_of(trip, name, profile, registrations) for trip, name in page], next_cursor
