"""A driver's shift: when it started and how long they have been online in it.

The earnings credit (docs/dispatch.md, "Earnings this shift") compares each driver's earnings per
online hour over their shift so far. `shift_online_s` is accumulated by the same statements that
renew a driver's presence, `shift_online_at` is the last moment counted, and an index on the
trips by driver and end lets the matcher sum a shift's earnings without reading a driver's whole
history.

Revision ID: dispatch_shift
Revises: dispatch_pay
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dispatch_shift"
down_revision: str | Sequence[str] | None = "dispatch_pay"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "location_driver_position",
        sa.Column("shift_started_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "location_driver_position",
        sa.Column("shift_online_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "location_driver_position",
        sa.Column("shift_online_s", sa.Float(), nullable=False, server_default=sa.text("0")),
    )
    op.create_index("ix_trip_driver_id_ended_at", "trip", ["driver_id", "ended_at"])


def downgrade() -> None:
    op.drop_index("ix_trip_driver_id_ended_at", table_name="trip")
    op.drop_column("location_driver_position", "shift_online_s")
    op.drop_column("location_driver_position", "shift_online_at")
    op.drop_column("location_driver_position", "shift_started_at")
