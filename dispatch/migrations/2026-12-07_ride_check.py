"""The ride check's tables: the trips it watches and the checks it asked (docs/safety.md)

Revision ID: ride_check
Revises: leader_epoch
Create Date: 2026-12-07 18:59:34.909572
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "ride_check"
down_revision: str | Sequence[str] | None = "leader_epoch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "safety_ride_check",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("trip_id", sa.Uuid(), nullable=False),
        sa.Column("rider_id", sa.Uuid(), nullable=False),
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("detector", sa.String(length=16), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("answer_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rider_answer", sa.String(length=8), nullable=True),
        sa.Column("rider_answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("driver_answer", sa.String(length=8), nullable=True),
        sa.Column("driver_answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalation", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_safety_ride_check_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rider_id"],
            ["rider.id"],
            name=op.f("fk_safety_ride_check_rider_id_rider"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trip_id"],
            ["trip.id"],
            name=op.f("fk_safety_ride_check_trip_id_trip"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_ride_check")),
    )
    op.create_index(
        "ix_safety_ride_check_due",
        "safety_ride_check",
        ["answer_by"],
        unique=False,
        postgresql_where="outcome = 'open'",
    )
    op.create_index("ix_safety_ride_check_trip_id", "safety_ride_check", ["trip_id"], unique=False)
    op.create_table(
        "safety_ride_watch",
        sa.Column("trip_id", sa.Uuid(), nullable=False),
        sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("last_point_id", sa.BigInteger(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["trip_id"],
            ["trip.id"],
            name=op.f("fk_safety_ride_watch_trip_id_trip"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("trip_id", name=op.f("pk_safety_ride_watch")),
    )
    op.create_index(
        "ix_safety_ride_watch_open",
        "safety_ride_watch",
        ["closed"],
        unique=False,
        postgresql_where="NOT closed",
    )


def downgrade() -> None:
    op.drop_index(
        "ix_safety_ride_watch_open", table_name="safety_ride_watch", postgresql_where="NOT closed"
    )
    op.drop_table("safety_ride_watch")
    op.drop_index("ix_safety_ride_check_trip_id", table_name="safety_ride_check")
    op.drop_index(
        "ix_safety_ride_check_due",
        table_name="safety_ride_check",
        postgresql_where="outcome = 'open'",
    )
    op.drop_table("safety_ride_check")
