"""Quotes as records: what a rider was shown and consented to before any driver was told.

Revision ID: trip_quote
Revises: dispatch_join_1207
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "trip_quote"
down_revision: str | Sequence[str] | None = "dispatch_join_1207"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trip_quote",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "rider_id", sa.Uuid(), sa.ForeignKey("rider.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("ask_sha256", sa.String(64), nullable=False),
        sa.Column("quote", postgresql.JSONB(), nullable=False),
        sa.Column("agreement_version", sa.Integer(), nullable=False),
        sa.Column("max_fare", sa.Numeric(9, 2), nullable=False),
        sa.Column("max_total", sa.Numeric(9, 2), nullable=False),
        sa.Column("lines", postgresql.JSONB(), nullable=False),
        sa.Column("jurisdiction", sa.String(40), nullable=False),
        sa.Column("jurisdiction_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trip_id", sa.Uuid(), nullable=True, unique=True),
    )
    op.create_index("ix_trip_quote_rider_id", "trip_quote", ["rider_id"])


def downgrade() -> None:
    op.drop_index("ix_trip_quote_rider_id", table_name="trip_quote")
    op.drop_table("trip_quote")
