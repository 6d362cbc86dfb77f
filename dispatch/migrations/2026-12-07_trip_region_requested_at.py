"""A region's requests by when they were made: the matcher's reference fare, the replay's days.

Revision ID: dispatch_trip_region_requested
Revises: leader_epoch
Create Date: 2026-12-07 19:00:19.387298
"""

from collections.abc import Sequence

from alembic import op

revision: str = "dispatch_trip_region_requested"
down_revision: str | Sequence[str] | None = "leader_epoch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_trip_region_requested_at", "trip", ["region", "requested_at"])


def downgrade() -> None:
    op.drop_index("ix_trip_region_requested_at", table_name="trip")
