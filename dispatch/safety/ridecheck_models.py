"""The ride check's tables: what the detectors remember of each trip they watch, and every check
they asked (docs/safety.md, "Ride check")."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Float, ForeignKey, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from coop.db import Base


class CheckOutcome(enum.StrEnum):
    open = "open"  # asked; not every party has answered, and it is not yet due
    ok = "ok"  # both parties answered `ok`
    help = "help"  # a party answered `help`: escalated at once, as an SOS
    unanswered = "unanswered"  # not both `ok` by `answer_by`: escalated to the operators


class RideWatch(Base):
    """One trip the detectors follow, from its driver's arrival to its end. In the database, not
    in Redis or a worker's memory: a restarted worker (or another one) takes over where the last
    sweep left it, and the state is saved in the same transaction as the checks it fired, so a
    check is asked once."""

    __tablename__ = "safety_ride_watch"
    __table_args__ = (Index("ix_safety_ride_watch_open", "closed", postgresql_where="NOT closed"),)

    trip_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("trip.id", ondelete="CASCADE"), primary_key=True
    )
    # dispatch.safety.ridecheck.Watch.to_json
    state: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # The newest trail point (location_trail_point.id) fed to the detectors.
    last_point_id: Mapped[int] = mapped_column(BigInteger, default=0)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RideCheck(Base):
    """One "Everything OK?" asked of both parties of a trip, their answers and what came of it."""

    __tablename__ = "safety_ride_check"
    __table_args__ = (
        Index("ix_safety_ride_check_trip_id", "trip_id"),
        Index("ix_safety_ride_check_due", "answer_by", postgresql_where="outcome = 'open'"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    trip_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("trip.id", ondelete="CASCADE"))
    # The parties when it fired: the only accounts whose answers are taken.
    rider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rider.id", ondelete="CASCADE"))
    driver_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("driver.id", ondelete="CASCADE"))
    detector: Mapped[str] = mapped_column(String(16))
    fired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Where the car was when it fired (none known for some `not_started` checks).
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The figures that made it fire (seconds stopped, metres farther, ...).
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB)
    answer_by: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rider_answer: Mapped[str | None] = mapped_column(String(8), nullable=True)
    rider_answered_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    driver_answer: Mapped[str | None] = mapped_column(String(8), nullable=True)
    driver_answered_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    outcome: Mapped[str] = mapped_column(String(16), default=CheckOutcome.open.value)
    # When and why it went to a person: `help` or `unanswered`.
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    escalation: Mapped[str | None] = mapped_column(String(16), nullable=True)
