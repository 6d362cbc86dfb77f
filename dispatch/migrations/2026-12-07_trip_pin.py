"""trip pin

Revision ID: trip_pin
Revises: leader_epoch
Create Date: 2026-12-07 19:03:02.564319
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "trip_pin"
down_revision: str | Sequence[str] | None = "leader_epoch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trip_pin",
        sa.Column("trip_id", sa.Uuid(), nullable=False),
        sa.Column("pin", sa.String(length=4), nullable=True),
        sa.Column("wrong_attempts", sa.SmallInteger(), nullable=False),
        sa.Column("rider_confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["trip_id"], ["trip.id"], name=op.f("fk_trip_pin_trip_id_trip"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("trip_id", name=op.f("pk_trip_pin")),
    )
    op.create_index(
        "ix_trip_pin_held",
        "trip_pin",
        ["trip_id"],
        unique=False,
        postgresql_where=sa.text("pin IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("trip_pin")
