"""Tables of the drivers domain."""

from __future__ import annotations

import enum
import hashlib
import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, Enum, ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.db import Base, utcnow

REASON_MAX_CHARS = 2000


class DriverStatus(enum.StrEnum):
    # `active` unless a person changed it through a recorded decision; no rating ever does.
    active = "active"
    inactive = "inactive"


class Driver(Base):
    __tablename__ = "driver"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    member_number: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[DriverStatus] = mapped_column(
        Enum(DriverStatus, name="driver_status"), default=DriverStatus.active
    )
    committee: Mapped[bool] = mapped_column(Boolean, default=False)
    reviewer: Mapped[bool] = mapped_column(Boolean, default=False)
    # An account of the simulated city (`make demo`): it drives, but is on no vote's roll.
    simulated: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    vehicle: Mapped[DriverVehicle] = relationship(lazy="joined", back_populates="driver")


class DriverVehicle(Base):
    __tablename__ = "driver_vehicle"

    driver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("driver.id", ondelete="CASCADE"), primary_key=True
    )
    plate: Mapped[str] = mapped_column(String(16))
    seats: Mapped[int] = mapped_column(SmallInteger)
    wheelchair_accessible: Mapped[bool] = mapped_column(Boolean, default=False)

    driver: Mapped[Driver] = relationship(back_populates="vehicle")


class DriverStatusChange(Base):
    __tablename__ = "driver_status_change"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    driver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("driver.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[DriverStatus] = mapped_column(
        Enum(DriverStatus, name="driver_status", create_type=False)
    )
    to_status: Mapped[DriverStatus] = mapped_column(
        Enum(DriverStatus, name="driver_status", create_type=False)
    )
    reason: Mapped[str] = mapped_column(String(REASON_MAX_CHARS))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def status_lock_key(driver_id: uuid.UUID) -> int:
    """The transaction-level advisory lock that orders a driver's status change against what
    depends on that status without writing the driver's row (a ballot: docs/agreement.md,
    "Ballot secrecy"). A status change takes it exclusively, a ballot shared."""
    digest = hashlib.sha256(b"coop.driver-status:" + driver_id.bytes).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
