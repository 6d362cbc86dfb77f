"""Drivers of a simulated city: marked, so they are on no vote's roll.

Revision ID: simulated_drivers
Revises: foundation
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "simulated_drivers"
down_revision: str | Sequence[str] | None = "foundation"
branch_labels: str | Sequence[str] | None = ("drivers",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "driver",
        sa.Column("simulated", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("driver", "simulated")
