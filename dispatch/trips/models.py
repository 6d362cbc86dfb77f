"""Tables of trips, the offers made for them, and the idempotency keys of trip requests.

The statuses and their sets are `dispatch.states`; the models re-export the two enums.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from geoalchemy2 import Geography, WKBElement
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from coop.db import Base, utcnow
from dispatch.states import (
    DRIVER_OPEN_SQL,
    OFFER_OPEN_SQL,
    RIDER_OPEN_SQL,
    WAITING_SQL,
    WITH_DRIVER_LIST,
    OfferStatus,
    TripStatus,
    TripTimeout,
)

__all__ = [
    "CancelledBy",
    "Offer",
    "OfferStatus",
    "Trip",
    "TripRequestKey",
    "TripStatus",
    "TripTimeout",
]


class CancelledBy(enum.StrEnum):
    rider = "rider"
    driver = "driver"


class Trip(Base):
    __tablename__ = "trip"
    # Partial indexes' predicates are the only raw SQL here: an index predicate is DDL, written
    # once when the index is made, and its status lists are dispatch.states' one SQL spelling,
    # which the migrations that made these indexes use too (an ORM expression would spell them
    # another way, with bound values the DDL has to inline).
    __table_args__ = (
        # A driver holds at most one non-terminal trip; a rider asks for one ride at a time.
        Index(
            "uq_trip_open_driver_id",
            "driver_id",
            unique=True,
            postgresql_where=text(DRIVER_OPEN_SQL),
        ),
        Index(
            "uq_trip_open_rider_id",
            "rider_id",
            unique=True,
            postgresql_where=text(RIDER_OPEN_SQL),
        ),
        # The fare review list, oldest first.
        Index(
            "ix_trip_fare_review",
            "ended_at",
            "id",
            postgresql_where=text("fare_review_reason IS NOT NULL"),
        ),
        # The matcher's queue: open requests of a region, oldest first.
        Index(
            "ix_trip_requested_region",
            "region",
            "requested_at",
            postgresql_where=text(f"status = {WAITING_SQL}"),
        ),
        # The matcher's search from the drivers' side: the open requests nearest a driver.
        Index(
            "ix_trip_requested_pickup",
            "pickup",
            postgresql_using="gist",
            postgresql_where=text(f"status = {WAITING_SQL}"),
        ),
        # A driver's trips by their end: the earnings of a shift (the matcher's earnings credit)
        # without reading the driver's whole history.
        Index("ix_trip_driver_id_ended_at", "driver_id", "ended_at"),
        # A region's requests by when they were made, whatever their status: the matcher's
        # reference fare (the median quote of the last hour) and the replay of recent days.
        Index("ix_trip_region_requested_at", "region", "requested_at"),
        CheckConstraint(
            f"status NOT IN {WITH_DRIVER_LIST} OR driver_id IS NOT NULL",
            name="driver_when_assigned",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    rider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rider.id"), index=True)
    driver_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("driver.id"), index=True, nullable=True
    )
    status: Mapped[TripStatus] = mapped_column(
        Enum(TripStatus, name="trip_status"), default=TripStatus.requested
    )
    region: Mapped[str] = mapped_column(String(64))
    pickup: Mapped[WKBElement] = mapped_column(Geography("POINT", srid=4326, spatial_index=False))
    dropoff: Mapped[WKBElement] = mapped_column(Geography("POINT", srid=4326, spatial_index=False))
    wheelchair_accessible: Mapped[bool] = mapped_column(Boolean, default=False)
    service_class: Mapped[str] = mapped_column(String(32))
    # The agreement in force at request time prices the trip, whatever is voted meanwhile.
    agreement_version: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    quote: Mapped[dict[str, Any]] = mapped_column(JSONB)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # requested_at + the agreement's dispatch.max_wait_s: unfulfilled if nobody accepted by then.
    matching_deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    arrived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    cancelled_by: Mapped[CancelledBy | None] = mapped_column(
        Enum(CancelledBy, name="trip_cancelled_by"), nullable=True
    )
    # Charged to a rider who cancels after the free period; all of it goes to the driver.
    cancellation_fee: Mapped[Decimal | None] = mapped_column(Numeric(9, 2), nullable=True)
    # Why the rider's cancellation cost what it did (a fee only after a real arrival, or after
    # the free period with the driver approaching: docs/dispatch.md, "Cancelling").
    cancellation_fee_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Set when the service ended the trip itself (a no-show, or a ride past its plausible
    # length, which the operators' review list shows): docs/dispatch.md, "Trips left open".
    timed_out: Mapped[TripTimeout | None] = mapped_column(
        Enum(TripTimeout, name="trip_timeout", native_enum=False, length=16), nullable=True
    )
    # Positions the driver reported while holding the trip that were not believed (an
    # impossible speed): counted as they arrive, and by the meter on completion.
    implausible_positions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The meter, set on completion.
    distance_m: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fare: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    fare_total: Mapped[Decimal | None] = mapped_column(Numeric(9, 2), nullable=True)
    driver_earnings: Mapped[Decimal | None] = mapped_column(Numeric(9, 2), nullable=True)
    coop_commission: Mapped[Decimal | None] = mapped_column(Numeric(9, 2), nullable=True)
    # The metered fare was above the quote by more than the agreement allows: capped, and why.
    fare_capped: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    fare_cap_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # The fare review list (docs/pay.md, "Fares a person reviews"): why a completed trip's fare
    # waits for a person (it hit the cap, or the meter drove far past the quote's route), and
    # when and how a person reviewed it.
    fare_review_reason: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    fare_reviewed_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    fare_review_note: Mapped[str | None] = mapped_column(String(500), nullable=True)


class Offer(Base):
    __tablename__ = "trip_offer"
    # Raw predicates, as the trip's indexes (above).
    __table_args__ = (
        # One pending offer per trip and per driver: the matcher can never double-book.
        Index(
            "uq_trip_offer_pending_trip_id",
            "trip_id",
            unique=True,
            postgresql_where=text(f"status = {OFFER_OPEN_SQL}"),
        ),
        Index(
            "uq_trip_offer_pending_driver_id",
            "driver_id",
            unique=True,
            postgresql_where=text(f"status = {OFFER_OPEN_SQL}"),
        ),
        Index(
            "ix_trip_offer_pending_expires_at",
            "expires_at",
            postgresql_where=text(f"status = {OFFER_OPEN_SQL}"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    trip_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("trip.id", ondelete="CASCADE"), index=True
    )
    driver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("driver.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[OfferStatus] = mapped_column(
        Enum(OfferStatus, name="trip_offer_status"), default=OfferStatus.pending
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # When the worker holding the driver's socket wrote the offer to it (first time).
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Why this driver: the figures the matcher used, and the sentence the driver reads.
    pickup_distance_m: Mapped[int] = mapped_column(Integer)
    pickup_eta_s: Mapped[int] = mapped_column(Integer)
    idle_s: Mapped[int] = mapped_column(Integer)
    cost: Mapped[int] = mapped_column(Integer)
    why: Mapped[str] = mapped_column(String(500))


class TripRequestKey(Base):
    """An `Idempotency-Key` of a trip request: the same key of the same rider is the same trip."""

    __tablename__ = "trip_request_key"

    rider_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rider.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # The request's body, hashed: the same key with another body is refused.
    request_sha256: Mapped[str] = mapped_column(String(64))
    trip_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("trip.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
