"""The line of drivers waiting for a place under the authorization's cap of cars in service.

Revision ID: capacity_wait
Revises: trip_quote
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "capacity_wait"
down_revision: str | Sequence[str] | None = "trip_quote"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "matching_capacity_wait",
        sa.Column(
            "driver_id",
            sa.Uuid(),
            sa.ForeignKey("driver.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_matching_capacity_wait_queued_at", "matching_capacity_wait", ["queued_at"])


def downgrade() -> None:
    op.drop_index("ix_matching_capacity_wait_queued_at", table_name="matching_capacity_wait")
    op.drop_table("matching_capacity_wait")
