"""What each audience sees of a trip: one model per audience, each built from the row by its own
constructor that names every field it fills. A column added to the trip reaches nobody until
someone adds it to an audience's model and constructor on purpose.

- The rider (`RiderTripView`): their ride, with their own account id, who is coming (the
  driver's first name, approved photo, car and plate) and the PIN they give at pickup.
- The driver (`DriverTripView`): the same ride without the rider's account id or any other stable
  identifier of the rider (next to the trip ids of their ratings it would unmask the raters):
  only the pickup and the first name the rider chose to share; never the PIN, only whether
  starting needs it.
- The operators (`OperatorTripView`, and the fare review list's `fare_review_of`).

There is no public view of a trip: what the public reads of trips (`figures`, the transparency
pages) are aggregates.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.terms import money_str
from coop.auth import Principal, Role
from coop.geo import Position
from dispatch.locations.geometry import position_of
from dispatch.states import TripStatus
from dispatch.trips import pin as pins
from dispatch.trips.models import Trip
from dispatch.trips.schemas import (
    FareOut,
    FareReviewOut,
    QuoteOut,
    TripDriverOut,
    TripOut,
    TripRiderOut,
    VehicleOut,
)
from drivers import photos
from drivers.models import Driver
from riders.models import Rider


def _money(amount: Decimal | None) -> str | None:
    return None if amount is None else money_str(amount)


class RiderTripView(TripOut):
    """The trip as its rider sees it (`TripOut` on the wire, `rider: null`)."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def of(
        cls, trip: Trip, *, driver: TripDriverOut | None, pin: pins.PinState = pins.NO_PIN
    ) -> RiderTripView:
        return cls(
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
            cancellation_fee=_money(trip.cancellation_fee),
            cancellation_fee_reason=trip.cancellation_fee_reason,
            matching_deadline_at=trip.matching_deadline_at,
            driver=driver,
            rider=None,
            implausible_positions=trip.implausible_positions,
            fare_capped=trip.fare_capped,
            fare_cap_reason=trip.fare_cap_reason,
            timed_out=trip.timed_out.value if trip.timed_out is not None else None,
            pin=pin.pin,
            pin_required=pin.required,
        )


class DriverTripView(TripOut):
    """The trip as its driver sees it (`TripOut` on the wire): `rider_id: null`, and `rider`
    holds only the first name the rider chose to share."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def of(
        cls,
        trip: Trip,
        *,
        driver: TripDriverOut | None,
        rider_first_name: str | None,
        pin_required: bool = False,
    ) -> DriverTripView:
        return cls(
            id=trip.id,
            status=trip.status.value,
            rider_id=None,
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
            cancellation_fee=_money(trip.cancellation_fee),
            cancellation_fee_reason=trip.cancellation_fee_reason,
            matching_deadline_at=trip.matching_deadline_at,
            driver=driver,
            rider=TripRiderOut(first_name=rider_first_name),
            implausible_positions=trip.implausible_positions,
            fare_capped=trip.fare_capped,
            fare_cap_reason=trip.fare_cap_reason,
            timed_out=trip.timed_out.value if trip.timed_out is not None else None,
            pin=None,
            pin_required=pin_required,
        )


class OperatorTripView(BaseModel):
    """One trip as the operators, who dispatch and settle disputes, see it: who, where, when, what
    it cost and why it ended. Not the riders' free text (`cancel_reason`), nor the rider's name."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    status: str
    region: str
    service_class: str
    agreement_version: int
    rider_id: uuid.UUID
    driver_id: uuid.UUID | None
    pickup: Position
    dropoff: Position
    requested_at: datetime
    assigned_at: datetime | None
    arrived_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    currency: str
    quote_total: str
    fare_total: str | None
    driver_earnings: str | None
    coop_commission: str | None
    cancelled_by: str | None
    cancellation_fee: str | None
    timed_out: str | None
    implausible_positions: int
    fare_capped: bool
    fare_review_reason: str | None
    fare_reviewed_at: datetime | None

    @classmethod
    def of(cls, trip: Trip) -> OperatorTripView:
        return cls(
            id=trip.id,
            status=trip.status.value,
            region=trip.region,
            service_class=trip.service_class,
            agreement_version=trip.agreement_version,
            rider_id=trip.rider_id,
            driver_id=trip.driver_id,
            pickup=position_of(trip.pickup),
            dropoff=position_of(trip.dropoff),
            requested_at=trip.requested_at,
            assigned_at=trip.assigned_at,
            arrived_at=trip.arrived_at,
            started_at=trip.started_at,
            ended_at=trip.ended_at,
            currency=trip.currency,
            quote_total=str(trip.quote["total"]),
            fare_total=_money(trip.fare_total),
            driver_earnings=_money(trip.driver_earnings),
            coop_commission=_money(trip.coop_commission),
            cancelled_by=trip.cancelled_by.value if trip.cancelled_by else None,
            cancellation_fee=_money(trip.cancellation_fee),
            timed_out=trip.timed_out.value if trip.timed_out is not None else None,
            implausible_positions=trip.implausible_positions,
            fare_capped=trip.fare_capped,
            fare_review_reason=trip.fare_review_reason,
            fare_reviewed_at=trip.fare_reviewed_at,
        )


def fare_review_of(trip: Trip) -> FareReviewOut:
    """A completed trip on the fare review list, as the operators judge it."""
    assert trip.ended_at is not None and trip.fare_review_reason is not None
    return FareReviewOut(
        trip_id=trip.id,
        driver_id=trip.driver_id,
        ended_at=trip.ended_at,
        reason=trip.fare_review_reason,
        distance_m=trip.distance_m,
        route_distance_m=int(trip.quote["distance_m"]),
        duration_s=trip.duration_s,
        fare_total=None if trip.fare_total is None else f"{trip.fare_total:.2f}",
        quote_total=str(trip.quote["total"]),
        fare_capped=trip.fare_capped,
        implausible_positions=trip.implausible_positions,
        reviewed_at=trip.fare_reviewed_at,
        note=trip.fare_review_note,
    )


@dataclass(frozen=True)
class TripViews:
    """One trip as each of its parties sees it."""

    rider: RiderTripView
    driver: DriverTripView

    def for_party(self, principal: Principal) -> TripOut:
        return self.rider if principal.role is Role.rider else self.driver


# The trip statuses in which its rider may see the driver's photo: while the driver is coming
# and the ride lasts (docs/security.md, "The driver's photo").
PHOTO_VISIBLE = (TripStatus.assigned, TripStatus.arrived, TripStatus.in_progress)


def first_name_of(name: str) -> str:
    """The first word of the name as registered: what a rider greets the driver by."""
    return name.split(maxsplit=1)[0] if name.strip() else ""


def photo_path(trip_id: uuid.UUID, sha256: str) -> str:
    # The digest in the path: a new photo is a new URL, so no cache shows the old face.
    return f"/v1/trips/{trip_id}/driver/photo?v={sha256[:16]}"


async def _assigned_driver(
    session: AsyncSession, trip: Trip, *, for_rider: bool
) -> TripDriverOut | None:
    """Who is coming, once a driver accepted: their id, name, car, and (for the rider, while
    the trip is current) the path of their approved photo."""
    if trip.driver_id is None:
        return None
    driver = await session.get(Driver, trip.driver_id)
    if driver is None:
        return None
    photo_url = None
    if for_rider and trip.status in PHOTO_VISIBLE:
        digest = await photos.approved_sha256(session=session, driver_id=driver.id)
        photo_url = None if digest is None else photo_path(trip.id, digest)
    return TripDriverOut(
        id=driver.id,
        name=driver.name,
        first_name=first_name_of(driver.name),
        photo_url=photo_url,
        vehicle=VehicleOut(
            plate=driver.vehicle.plate,
            seats=driver.vehicle.seats,
            wheelchair_accessible=driver.vehicle.wheelchair_accessible,
            make=driver.vehicle.make,
            model=driver.vehicle.model,
            colour=driver.vehicle.colour,
        ),
    )


async def views(*, session: AsyncSession, trip: Trip) -> TripViews:
    """The trip as docs/protocol.md shows it to its rider and to its driver."""
    pin = await pins.state_of(session, trip)
    first_name = await session.scalar(
        select(Rider.shared_first_name).where(Rider.id == trip.rider_id)
    )
    return TripViews(
        rider=RiderTripView.of(
            trip, driver=await _assigned_driver(session, trip, for_rider=True), pin=pin
        ),
        driver=DriverTripView.of(
            trip,
            driver=await _assigned_driver(session, trip, for_rider=False),
            rider_first_name=first_name,
            pin_required=pin.required,
        ),
    )


async def view_for(*, session: AsyncSession, trip: Trip, principal: Principal) -> TripOut:
    """The trip as the caller (its rider or its driver) may see it."""
    return (await views(session=session, trip=trip)).for_party(principal)
