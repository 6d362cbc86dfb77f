"""Tokens: an optional expiry and a revocation date.

Revision ID: token_expiry
Revises: audit
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "token_expiry"
down_revision: str | Sequence[str] | None = "audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("auth_token", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("auth_token", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("auth_token", "revoked_at")
    op.drop_column("auth_token", "expires_at")
