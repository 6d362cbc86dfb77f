"""Fare caps the Minister declares during a disruption (T-11.2 s. 94), as an operator records them.

Revision ID: fare_cap
Revises: capacity_wait
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision: str = "fare_cap"
down_revision: str | Sequence[str] | None = "capacity_wait"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trip_fare_cap",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "territory",
            geoalchemy2.Geography("GEOMETRY", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("base", sa.Numeric(9, 2), nullable=False),
        sa.Column("per_km", sa.Numeric(9, 4), nullable=False),
        sa.Column("per_minute", sa.Numeric(9, 4), nullable=False),
        sa.Column("multiplier", sa.Numeric(4, 2), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("trip_fare_cap")
