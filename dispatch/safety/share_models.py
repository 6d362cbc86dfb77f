"""The table of shared-trip links (docs/safety.md, "Share my trip"): one row per link a party to
a trip made, keyed by the SHA-256 of its token (the token itself is shown once, to its maker, and
never stored: a reader of the database cannot open anyone's page)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import DateTime, Enum, ForeignKey, Index, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from coop.db import Base, utcnow


class Sharer(enum.StrEnum):
    """Which party made the link: the rider, or the driver for their own safety."""

    rider = "rider"
    driver = "driver"


class TripShare(Base):
    __tablename__ = "safety_trip_share"
    __table_args__ = (
        # The per-trip limit counts a party's links of one trip.
        Index("ix_safety_trip_share_trip_id_sharer", "trip_id", "sharer"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    trip_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("trip.id", ondelete="CASCADE"))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    sharer: Mapped[Sharer] = mapped_column(Enum(Sharer, name="safety_sharer"))
    # Made at assignment by the rider's auto-share policy rather than by a tap.
    automatic: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Set once, by the first open: the sharer is told then, and never again for this link.
    first_opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
