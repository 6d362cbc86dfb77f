"""Dispatch: the links a party to a trip makes so others can follow it (docs/safety.md).

Revision ID: dispatch_safety_trip_share
Revises: leader_epoch
Create Date: 2026-12-07 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dispatch_safety_trip_share"
down_revision: str | Sequence[str] | None = "leader_epoch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    sharer = sa.Enum("rider", "driver", name="safety_sharer")
    op.create_table(
        "safety_trip_share",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("trip_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sharer", sharer, nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["trip_id"],
            ["trip.id"],
            name=op.f("fk_safety_trip_share_trip_id_trip"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_trip_share")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_safety_trip_share_token_hash")),
    )
    op.create_index(
        "ix_safety_trip_share_trip_id_sharer", "safety_trip_share", ["trip_id", "sharer"]
    )


def downgrade() -> None:
    op.drop_index("ix_safety_trip_share_trip_id_sharer", table_name="safety_trip_share")
    op.drop_table("safety_trip_share")
    sa.Enum(name="safety_sharer").drop(op.get_bind(), checkfirst=True)
