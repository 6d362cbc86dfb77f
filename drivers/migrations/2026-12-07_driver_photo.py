"""driver photo

Revision ID: driver_photo
Revises: qualification_register
Create Date: 2026-12-07 19:02:41.052125
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "driver_photo"
down_revision: str | Sequence[str] | None = "qualification_register"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "driver_photo",
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("width_px", sa.SmallInteger(), nullable=False),
        sa.Column("height_px", sa.SmallInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "approved", "rejected", name="driver_photo_status"),
            nullable=False,
        ),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=80), nullable=True),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_driver_photo_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("driver_id", name=op.f("pk_driver_photo")),
    )


def downgrade() -> None:
    op.drop_table("driver_photo")
    sa.Enum(name="driver_photo_status").drop(op.get_bind(), checkfirst=False)
