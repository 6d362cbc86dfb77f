"""Tables of rider accounts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from coop.db import Base, utcnow


class Rider(Base):
    __tablename__ = "rider"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    # The first name the rider chose to show their drivers (null: none). Drivers never see the
    # rider's account id or full name (docs/protocol.md, "Trips").
    shared_first_name: Mapped[str | None] = mapped_column(String(50), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
