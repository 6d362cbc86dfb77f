"""Dispatch: a partial GiST index of the requested trips' pickups, for the matcher's search from
the drivers' side (every open request is considered in every batch).

Revision ID: dispatch_requested_pickup
Revises: dispatch
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dispatch_requested_pickup"
down_revision: str | Sequence[str] | None = "dispatch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_trip_requested_pickup",
        "trip",
        ["pickup"],
        postgresql_using="gist",
        postgresql_where=sa.text("status = 'requested'"),
    )


def downgrade() -> None:
    op.drop_index("ix_trip_requested_pickup", table_name="trip")
