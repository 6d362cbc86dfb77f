"""Dispatch: when a driver's position was last believed only as a new start (a re-anchor).

Revision ID: dispatch_anchored_at
Revises: dispatch_shift, dispatch_travel_time
Create Date: 2026-12-07 13:53:41.867777
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dispatch_anchored_at"
down_revision: str | Sequence[str] | None = ("dispatch_shift", "dispatch_travel_time")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "location_driver_position",
        sa.Column("anchored_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("location_driver_position", "anchored_at")
