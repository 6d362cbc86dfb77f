"""Tables of pay: periods, and each driver's statement of a closed period with its lines.

A period's statement is written once, when the period closes, and never changed afterwards
(triggers refuse UPDATE and DELETE on statements and lines). A trip is posted on exactly one
statement (the line's primary key is the trip), so no trip is ever paid twice.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, DateTime, Enum, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from coop.db import Base

Amount = Numeric(12, 2)


class PayPeriod(Base):
    """One pay period; `closed_at` is set once, when its statements are written."""

    __tablename__ = "pay_period"
    __table_args__ = (
        Index(
            "ix_pay_period_open_ends_at", "ends_at", postgresql_where=sql_text("closed_at IS NULL")
        ),
    )

    start_date: Mapped[date] = mapped_column(Date, primary_key=True)  # local date it starts
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), unique=True)
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    period_days: Mapped[int] = mapped_column(Integer)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The agreement version in force at the period's end, whose hourly floor it uses.
    floor_version: Mapped[int | None] = mapped_column(Integer)
    floor_per_hour: Mapped[Decimal | None] = mapped_column(Amount)
    currency: Mapped[str | None] = mapped_column(String(3))


class LineKind(enum.StrEnum):
    trip = "trip"
    cancellation_fee = "cancellation_fee"


class PayStatement(Base):
    """A driver's totals for a closed period."""

    __tablename__ = "pay_statement"

    period_start: Mapped[date] = mapped_column(
        ForeignKey("pay_period.start_date"), primary_key=True
    )
    driver_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("driver.id"), primary_key=True)
    trips: Mapped[int] = mapped_column(Integer)
    fares_total: Mapped[Decimal] = mapped_column(Amount)
    commission_total: Mapped[Decimal] = mapped_column(Amount)
    earnings_total: Mapped[Decimal] = mapped_column(Amount)
    cancellation_fees_total: Mapped[Decimal] = mapped_column(Amount)
    engaged_seconds: Mapped[int] = mapped_column(Integer)
    floor_due: Mapped[Decimal] = mapped_column(Amount)
    top_up: Mapped[Decimal] = mapped_column(Amount)
    pay_total: Mapped[Decimal] = mapped_column(Amount)


class PayStatementLine(Base):
    """One trip on one statement: a completed trip, or a cancellation fee the driver received."""

    __tablename__ = "pay_statement_line"
    __table_args__ = (Index("ix_pay_statement_line_statement", "period_start", "driver_id"),)

    trip_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("trip.id"), primary_key=True)
    period_start: Mapped[date] = mapped_column(ForeignKey("pay_period.start_date"))
    driver_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("driver.id"))
    kind: Mapped[LineKind] = mapped_column(Enum(LineKind, name="pay_line_kind"))
    # A trip that ended in an earlier, already closed period (its record arrived after the close).
    adjustment: Mapped[bool] = mapped_column(Boolean)
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    engaged_seconds: Mapped[int] = mapped_column(Integer)
    distance_m: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[int | None] = mapped_column(Integer)
    fare_total: Mapped[Decimal] = mapped_column(Amount)
    commission: Mapped[Decimal] = mapped_column(Amount)
    driver_earnings: Mapped[Decimal] = mapped_column(Amount)
    cancellation_fee: Mapped[Decimal] = mapped_column(Amount)
    agreement_version: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
