"""Tables of the drivers domain."""

from __future__ import annotations

import enum
import hashlib
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Computed,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.db import Base, utcnow
from coop.search import fold_sql

REASON_MAX_CHARS = 2000


class DriverStatus(enum.StrEnum):
    # `active` unless a person changed it through a recorded decision; no rating ever does.
    active = "active"
    inactive = "inactive"


class Driver(Base):
    __tablename__ = "driver"
    # The operators' search: in the order of the folded name, a page after another.
    __table_args__ = (Index("ix_driver_name_folded", "name_folded", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    # The name as the operators' search compares it (coop/search.py), kept by the database:
    # byte-ordered (`C`), so its order is the search's, whatever the database's locale.
    name_folded: Mapped[str] = mapped_column(
        String(200, collation="C"), Computed(fold_sql("name"), persisted=True)
    )
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
    # The car's register (drivers/qualifications.py): facts an operator recorded from the
    # documents, never the scans. All optional: a car without them is registered, not offered.
    vin: Mapped[str | None] = mapped_column(String(17), default=None)
    make: Mapped[str | None] = mapped_column(String(40), default=None)
    model: Mapped[str | None] = mapped_column(String(40), default=None)
    year: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    colour: Mapped[str | None] = mapped_column(String(30), default=None)
    owner: Mapped[str | None] = mapped_column(String(200), default=None)
    odometer_km: Mapped[int | None] = mapped_column(Integer, default=None)
    inspection_due_on: Mapped[date | None] = mapped_column(Date, default=None)

    driver: Mapped[Driver] = relationship(back_populates="vehicle")


class DriverQualification(Base):
    """A driver's qualification register: what the law requires of them, as recorded facts."""

    __tablename__ = "driver_qualification"

    driver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("driver.id", ondelete="CASCADE"), primary_key=True
    )
    licence_number: Mapped[str | None] = mapped_column(String(32), default=None)
    training_certificate_on: Mapped[date | None] = mapped_column(Date, default=None)
    record_check_on: Mapped[date | None] = mapped_column(Date, default=None)
    # The outcome as a person recorded it: clear, or a record the law's committee must weigh.
    record_check_clear: Mapped[bool | None] = mapped_column(Boolean, default=None)
    authorization_expires_on: Mapped[date | None] = mapped_column(Date, default=None)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DriverRegisterEntry(Base):
    """One recording of a driver's qualification or car, as recorded: the register's history,
    kept so what held on a given day can be shown (the regulator's trip register), and named
    by the audit log instead of the driver."""

    __tablename__ = "driver_register_entry"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    driver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("driver.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # "qualification" or "vehicle"
    facts: Mapped[dict[str, Any]] = mapped_column(JSONB)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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


class PhotoStatus(enum.StrEnum):
    # Riders see a photo only once a person approved it; a new upload waits for a person again.
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class DriverPhoto(Base):
    """A driver's one photo, as re-encoded by the service (drivers/photos.py): never the file
    they sent, so no metadata of theirs (place, device, time) is kept."""

    __tablename__ = "driver_photo"

    driver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("driver.id", ondelete="CASCADE"), primary_key=True
    )
    image: Mapped[bytes] = mapped_column(LargeBinary)
    content_type: Mapped[str] = mapped_column(String(32))
    width_px: Mapped[int] = mapped_column(SmallInteger)
    height_px: Mapped[int] = mapped_column(SmallInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[PhotoStatus] = mapped_column(Enum(PhotoStatus, name="driver_photo_status"))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Which operator account decided (`Principal.account`), for the operators' own review.
    decided_by: Mapped[str | None] = mapped_column(String(80), default=None)
    # Why a person rejected it, for the driver to read (null: not rejected).
    reason: Mapped[str | None] = mapped_column(String(REASON_MAX_CHARS), default=None)


class DriverSafety(Base):
    """A driver's trip sharing, for their own safety (drivers/safety.py): whether their trips
    are shared by themselves, and the people they trust to follow them. No row: never, and no
    contacts. The rules are the riders' (coop/trusted_contacts.py)."""

    __tablename__ = "driver_safety"

    driver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("driver.id", ondelete="CASCADE"), primary_key=True
    )
    # always, night or never; null: never.
    auto_share: Mapped[str | None] = mapped_column(String(8), default=None)
    # [{"name": ..., "phone": ... | null, "email": ... | null}], at most
    # coop.trusted_contacts.MAX_CONTACTS.
    contacts: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
