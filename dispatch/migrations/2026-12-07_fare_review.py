"""Dispatch: the fare review list (a completed trip's fare that waits for a person).

Revision ID: dispatch_fare_review
Revises: dispatch_anchored_at
Create Date: 2026-12-07 14:08:17.623040
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dispatch_fare_review"
down_revision: str | Sequence[str] | None = "dispatch_anchored_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("trip", sa.Column("fare_review_reason", sa.String(1000), nullable=True))
    op.add_column("trip", sa.Column("fare_reviewed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("trip", sa.Column("fare_review_note", sa.String(500), nullable=True))
    op.create_index(
        "ix_trip_fare_review",
        "trip",
        ["ended_at", "id"],
        postgresql_where=sa.text("fare_review_reason IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_trip_fare_review", table_name="trip")
    op.drop_column("trip", "fare_review_note")
    op.drop_column("trip", "fare_reviewed_at")
    op.drop_column("trip", "fare_review_reason")
