"""Riders: the first name a rider chooses to show their drivers (null: none).

Revision ID: rider_shared_first_name
Revises: token_expiry
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "rider_shared_first_name"
down_revision: str | Sequence[str] | None = "token_expiry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("rider", sa.Column("shared_first_name", sa.String(50), nullable=True))


def downgrade() -> None:
    op.drop_column("rider", "shared_first_name")
