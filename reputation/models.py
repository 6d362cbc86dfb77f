"""Tables of the reputation domain: rateable trips, ratings, appeals and support cases."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.db import Base, utcnow

COMMENT_MAX_CHARS = 1000
STATEMENT_MAX_CHARS = 2000
REASON_MAX_CHARS = 2000
TAG_MAX_CHARS = 32


class AppealStatus(enum.StrEnum):
    open = "open"
    decided = "decided"


class AppealOutcome(enum.StrEnum):
    rating_removed = "rating_removed"
    rating_stands = "rating_stands"


class RateableTrip(Base):
    """A completed trip, as dispatch reported it: who rode and who drove. Never the trips table."""

    __tablename__ = "reputation_rateable_trip"

    trip_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    rider_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rider.id", ondelete="CASCADE"), index=True
    )
    driver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("driver.id", ondelete="CASCADE"), index=True
    )
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Rating(Base):
    __tablename__ = "reputation_rating"
    __table_args__ = (CheckConstraint("stars BETWEEN 1 AND 5", name="stars_range"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    trip_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reputation_rateable_trip.trip_id", ondelete="CASCADE"), unique=True
    )
    driver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("driver.id", ondelete="CASCADE"), index=True
    )
    rider_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rider.id", ondelete="CASCADE"), index=True
    )
    stars: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(String(COMMENT_MAX_CHARS))
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(TAG_MAX_CHARS)))
    # Copied from the rateable trip: "most recent" orders by when the trip ended.
    trip_completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    appeal: Mapped[Appeal | None] = relationship(back_populates="rating", lazy="selectin")


class Appeal(Base):
    __tablename__ = "reputation_appeal"
    __table_args__ = (
        CheckConstraint(
            "(status = 'open' AND outcome IS NULL AND decided_at IS NULL AND reason IS NULL)"
            " OR (status = 'decided' AND outcome IS NOT NULL AND decided_at IS NOT NULL"
            " AND reason IS NOT NULL)",
            name="decision_complete",
        ),
        Index("ix_reputation_appeal_status_due_by", "status", "due_by"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    rating_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reputation_rating.id", ondelete="CASCADE"), unique=True
    )
    driver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("driver.id", ondelete="CASCADE"), index=True
    )
    statement: Mapped[str] = mapped_column(String(STATEMENT_MAX_CHARS))
    status: Mapped[AppealStatus] = mapped_column(
        Enum(AppealStatus, name="reputation_appeal_status"), default=AppealStatus.open
    )
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    due_by: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[AppealOutcome | None] = mapped_column(
        Enum(AppealOutcome, name="reputation_appeal_outcome")
    )
    reason: Mapped[str | None] = mapped_column(String(REASON_MAX_CHARS))
    decided_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("driver.id", ondelete="SET NULL"), index=True
    )
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    rating: Mapped[Rating] = relationship(back_populates="appeal", lazy="joined")

    def is_overdue(self, now: datetime) -> bool:
        return self.status is AppealStatus.open and now > self.due_by


class SupportCase(Base):
    """A person from the co-op reaches out to a driver whose score fell below the threshold.

    One case covers one dip: `recovered_at` is set once the score is back at or above the
    threshold, and only then may a later dip open another case.
    """

    __tablename__ = "reputation_support_case"
    __table_args__ = (
        Index(
            "uq_reputation_support_case_current_driver_id",
            "driver_id",
            unique=True,
            postgresql_where=text("recovered_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    driver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("driver.id", ondelete="CASCADE"), index=True
    )
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    score: Mapped[Decimal] = mapped_column(Numeric(3, 2))
    support_threshold: Mapped[Decimal] = mapped_column(Numeric(3, 2))
    agreement_version: Mapped[int] = mapped_column(Integer)
    recovered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(String(REASON_MAX_CHARS))
