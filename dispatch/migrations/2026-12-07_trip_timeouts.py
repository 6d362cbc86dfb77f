"""Trips the service ended itself: `trip.timed_out` (no_show, ride_overrun).

Revision ID: dispatch_trip_timeouts
Revises: dispatch_shift, dispatch_travel_time
Create Date: 2026-12-07 13:53:33.440355
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dispatch_trip_timeouts"
down_revision: str | Sequence[str] | None = ("dispatch_shift", "dispatch_travel_time")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("trip", sa.Column("timed_out", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("trip", "timed_out")
