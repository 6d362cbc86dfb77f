"""Tables of rider accounts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Computed, DateTime, ForeignKey, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from coop.db import Base, utcnow
from coop.search import fold_sql


class Rider(Base):
    __tablename__ = "rider"
    # The operators' search: in the order of the folded name, a page after another.
    __table_args__ = (Index("ix_rider_name_folded", "name_folded", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    # The name as the operators' search compares it (coop/search.py), kept by the database:
    # byte-ordered (`C`), so its order is the search's, whatever the database's locale.
    name_folded: Mapped[str] = mapped_column(
        String(200, collation="C"), Computed(fold_sql("name"), persisted=True)
    )
    # The first name the rider chose to show their drivers (null: none). Drivers never see the
    # rider's account id or full name (docs/protocol.md, "Trips").
    shared_first_name: Mapped[str | None] = mapped_column(String(50), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RiderSafety(Base):
    """A rider's safety choices (riders/safety.py): the PIN at pickup, sharing their trips, and
    the people they trust to follow them. No row: the co-op's defaults and no contacts."""

    __tablename__ = "rider_safety"

    rider_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rider.id", ondelete="CASCADE"), primary_key=True
    )
    # always, night or never; null: the co-op's default (the agreement's safety.pin_default).
    pin: Mapped[str | None] = mapped_column(String(8), default=None)
    # always, night or never; null: never.
    auto_share: Mapped[str | None] = mapped_column(String(8), default=None)
    # [{"name": ..., "phone": ... | null, "email": ... | null}], at most riders.safety.MAX_CONTACTS.
    contacts: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
