"""Dispatch: the meter's counts and caps on trips, and segment starts on trails.

Revision ID: dispatch_trust_meter
Revises: dispatch_requested_pickup
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dispatch_trust_meter"
down_revision: str | Sequence[str] | None = "dispatch_requested_pickup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "trip",
        sa.Column("implausible_positions", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "trip",
        sa.Column("fare_capped", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("trip", sa.Column("fare_cap_reason", sa.String(500), nullable=True))
    op.add_column("trip", sa.Column("cancellation_fee_reason", sa.String(500), nullable=True))
    op.add_column(
        "location_trail_point",
        sa.Column("segment_start", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("location_trail_point", "segment_start")
    op.drop_column("trip", "cancellation_fee_reason")
    op.drop_column("trip", "fare_cap_reason")
    op.drop_column("trip", "fare_capped")
    op.drop_column("trip", "implausible_positions")
