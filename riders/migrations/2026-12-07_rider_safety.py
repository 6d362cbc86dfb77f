"""rider safety

Revision ID: rider_safety
Revises: rider_shared_first_name
Create Date: 2026-12-07 19:02:51.668291
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "rider_safety"
down_revision: str | Sequence[str] | None = "rider_shared_first_name"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rider_safety",
        sa.Column("rider_id", sa.Uuid(), nullable=False),
        sa.Column("pin", sa.String(length=8), nullable=True),
        sa.Column("auto_share", sa.String(length=8), nullable=True),
        sa.Column("contacts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rider_id"],
            ["rider.id"],
            name=op.f("fk_rider_safety_rider_id_rider"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("rider_id", name=op.f("pk_rider_safety")),
    )


def downgrade() -> None:
    op.drop_table("rider_safety")
