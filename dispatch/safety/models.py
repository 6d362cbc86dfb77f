"""Tables of safety alerts and cases (docs/safety.md): one row per alert or case, the positions
recorded while an SOS is open, and the operators' notes.

Alerts (an SOS, a ride check nobody answered or answered `help`) and cases (a rider's
`driver_or_car_does_not_match` cancellation, a driver's flag of a rider) share one table and one
life: raised, acknowledged by a person, noted, resolved with an outcome. `kind` tells them apart.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from coop.db import Base, utcnow


class AlertKind(enum.StrEnum):
    sos = "sos"
    ride_check = "ride_check"
    # Cases: a person reviews them; nothing acts on them by itself.
    driver_or_car_does_not_match = "driver_or_car_does_not_match"
    rider_flag = "rider_flag"


ALERT_KINDS = (AlertKind.sos, AlertKind.ride_check)
CASE_KINDS = (AlertKind.driver_or_car_does_not_match, AlertKind.rider_flag)


class Outcome(enum.StrEnum):
    real = "real"
    false_alarm = "false_alarm"
    drill = "drill"


class SafetyAlert(Base):
    __tablename__ = "safety_alert"
    __table_args__ = (
        # The operators' queue: what is not resolved, oldest first.
        Index(
            "ix_safety_alert_open",
            "raised_at",
            postgresql_where=text("resolved_at IS NULL AND NOT drill"),
        ),
        CheckConstraint("raised_by_role IN ('rider', 'driver')", name="raised_by_role"),
        CheckConstraint(
            "outcome IS NULL OR outcome IN ('real', 'false_alarm', 'drill')", name="outcome"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(32))
    # A drill is recorded (the person sees the button works) but never reaches the queue.
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    raised_by_role: Mapped[str] = mapped_column(String(8))
    raised_by_id: Mapped[uuid.UUID] = mapped_column(index=True)
    trip_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("trip.id", ondelete="SET NULL"), default=None, index=True
    )
    # The parties: the raiser and the other party of the trip (the car's driver, the rider).
    rider_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    driver_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # The car as it was when the alert was raised: a plate can change later.
    vehicle_plate: Mapped[str | None] = mapped_column(String(16), default=None)
    vehicle_description: Mapped[str | None] = mapped_column(String(120), default=None)
    # A flag's reason (from a list) and the raiser's words, if any.
    reason: Mapped[str | None] = mapped_column(String(40), default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The agreement's `safety.ack_within_s` when the alert was raised: the promise it is held to.
    ack_within_s: Mapped[int] = mapped_column(Integer)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)


class SafetyAlertPosition(Base):
    """Where the raiser (or the car) was: at the alert, then every position sent until resolved."""

    __tablename__ = "safety_alert_position"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    alert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("safety_alert.id", ondelete="CASCADE"), index=True
    )
    # "raiser": sent by the person who raised it; "car": the car's last position the service held.
    source: Mapped[str] = mapped_column(String(8))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SafetyAlertNote(Base):
    __tablename__ = "safety_alert_note"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    alert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("safety_alert.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
