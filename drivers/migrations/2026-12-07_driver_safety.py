"""driver safety

Revision ID: driver_safety
Revises: driver_photo
Create Date: 2026-12-07 22:26:47.471768
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "driver_safety"
down_revision: str | Sequence[str] | None = "driver_photo"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "driver_safety",
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("auto_share", sa.String(length=8), nullable=True),
        sa.Column("contacts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_driver_safety_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("driver_id", name=op.f("pk_driver_safety")),
    )


def downgrade() -> None:
    op.drop_table("driver_safety")
