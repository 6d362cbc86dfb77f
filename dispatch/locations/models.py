"""Tables of driver positions: the latest one per driver (presence) and the trail of a trip."""

from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geography, WKBElement
from sqlalchemy import BigInteger, Boolean, DateTime, Float, ForeignKey, Identity, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from coop.db import Base


class DriverPosition(Base):
    """One row per driver: where they are, whether they take trips, when their socket last spoke.

    A driver is offerable while `available` and `last_seen_at` is within the grace period
    (`COOP_DRIVER_GRACE_S`); the matcher's KNN search runs on the GiST index of `position`.
    """

    __tablename__ = "location_driver_position"
    __table_args__ = (
        Index("ix_location_driver_position_position", "position", postgresql_using="gist"),
    )

    driver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("driver.id", ondelete="CASCADE"), primary_key=True
    )
    # Null until the first location frame (a driver may go available before any fix).
    position: Mapped[WKBElement | None] = mapped_column(
        Geography("POINT", srid=4326, spatial_index=False), nullable=True
    )
    heading_deg: Mapped[float | None] = mapped_column(Float, nullable=True)
    speed_mps: Mapped[float | None] = mapped_column(Float, nullable=True)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # When a report was last believed only as a new start (rejected positions that agreed for a
    # while, dispatch.locations.plausibility): the position since then is not joined by believed
    # moves to where the driver was before, so it proves no approach (`arrived`, the fee).
    anchored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    available: Mapped[bool] = mapped_column(Boolean, default=False)
    # Start of the current stretch of availability: going off duty, or being silent longer than
    # the grace period, starts a new one. The fairness term counts waiting from here at most.
    available_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The driver's shift (docs/dispatch.md, "Earnings this shift"): it starts when they come on
    # duty after a break of at least `SHIFT_BREAK_S` off duty or out of touch. `shift_online_s`
    # is the time they were available and present in it, added up by the statements that renew
    # presence (each gap between two signs of life counts if it is within the grace period);
    # `shift_online_at` is the last moment counted.
    shift_started_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    shift_online_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    shift_online_s: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))


class TrailPoint(Base):
    """A position the driver reported while holding a trip: the rider's live view and the meter."""

    __tablename__ = "location_trail_point"
    __table_args__ = (
        Index("ix_location_trail_point_trip_id_recorded_at", "trip_id", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    trip_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("trip.id", ondelete="CASCADE"))
    driver_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("driver.id", ondelete="CASCADE"))
    position: Mapped[WKBElement] = mapped_column(Geography("POINT", srid=4326, spatial_index=False))
    # When the server received the report: metering compares it with the trip's start and end.
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Believed as a new start (the driver's first report here, or one believed after a run of
    # implausible ones): the meter counts no distance from the point before it.
    segment_start: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
