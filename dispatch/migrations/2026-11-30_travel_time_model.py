"""The travel-time model: per cell-hour statistics learned from completed trips, and versions.

Revision ID: dispatch_travel_time
Revises: dispatch_pay
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dispatch_travel_time"
down_revision: str | Sequence[str] | None = "dispatch_pay"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "matching_travel_cell",
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("hour", sa.SmallInteger(), nullable=False),
        sa.Column("passages", sa.BigInteger(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("cell", "hour", name=op.f("pk_matching_travel_cell")),
    )
    op.create_table(
        "matching_travel_model",
        sa.Column("version", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("through_ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("through_trip_id", sa.Uuid(), nullable=False),
        sa.Column("trips", sa.Integer(), nullable=False),
        sa.Column("passages", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_matching_travel_model")),
    )


def downgrade() -> None:
    op.drop_table("matching_travel_model")
    op.drop_table("matching_travel_cell")
