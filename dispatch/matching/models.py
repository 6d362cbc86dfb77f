"""Tables of the travel-time model (`dispatch.matching.traveltime`): what it learned, and when.

`matching_travel_cell` holds the sufficient statistics of each cell-hour (passages, metres,
seconds), so a recompute folds in only the trips completed since the last one;
`matching_travel_model` records each recompute that changed them: its version (what every
worker compares to know it must reload) and how far through the completed trips it has read.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    Identity,
    Integer,
    SmallInteger,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from coop.db import Base


class TravelCell(Base):
    """One H3 cell (resolution 8, as its 64-bit integer) in one hour of the week."""

    __tablename__ = "matching_travel_cell"

    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hour: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    passages: Mapped[int] = mapped_column(BigInteger)
    distance_m: Mapped[float] = mapped_column(Float)
    duration_s: Mapped[float] = mapped_column(Float)


class TravelModelVersion(Base):
    """A recompute that folded trips into the cells; the newest row is the model in force."""

    __tablename__ = "matching_travel_model"

    version: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The last trip read, in (ended_at, id) order: the next recompute reads those after it.
    through_ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    through_trip_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    trips: Mapped[int] = mapped_column(Integer)  # trips this recompute read
    passages: Mapped[int] = mapped_column(BigInteger)  # passages this recompute added


class LeaderEpoch(Base):
    """A region's leadership, numbered: every worker that takes the lead raises the epoch, and a
    batch writes its offers only under the epoch its matcher took the lead with
    (`dispatch.matching.leadership`), so a leader that lost the lead without knowing it (a
    frozen or cut-off host coming back) cannot act after another took over."""

    __tablename__ = "matching_leader_epoch"

    region: Mapped[str] = mapped_column(String(64), primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The leader renews its lease while it works (`leadership.RENEW_EVERY_S`); a lease older
    # than `leadership.LEASE_S` is a stuck leader's, and another worker takes the lead from it.
    renewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
