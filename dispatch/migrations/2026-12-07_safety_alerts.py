"""Safety alerts and cases, their positions and the operators' notes.

Revision ID: safety_alerts
Revises: leader_epoch
Create Date: 2026-12-07 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "safety_alerts"
down_revision: str | Sequence[str] | None = "leader_epoch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "safety_alert",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("drill", sa.Boolean(), nullable=False),
        sa.Column("raised_by_role", sa.String(length=8), nullable=False),
        sa.Column("raised_by_id", sa.Uuid(), nullable=False),
        sa.Column("trip_id", sa.Uuid(), nullable=True),
        sa.Column("rider_id", sa.Uuid(), nullable=True),
        sa.Column("driver_id", sa.Uuid(), nullable=True),
        sa.Column("vehicle_plate", sa.String(length=16), nullable=True),
        sa.Column("vehicle_description", sa.String(length=120), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ack_within_s", sa.Integer(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Uuid(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('real', 'false_alarm', 'drill')",
            name=op.f("ck_safety_alert_outcome"),
        ),
        sa.CheckConstraint(
            "raised_by_role IN ('rider', 'driver')", name=op.f("ck_safety_alert_raised_by_role")
        ),
        sa.ForeignKeyConstraint(
            ["trip_id"],
            ["trip.id"],
            name=op.f("fk_safety_alert_trip_id_trip"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_alert")),
    )
    op.create_index(
        "ix_safety_alert_open",
        "safety_alert",
        ["raised_at"],
        unique=False,
        postgresql_where=sa.text("resolved_at IS NULL AND NOT drill"),
    )
    op.create_index(
        op.f("ix_safety_alert_raised_by_id"), "safety_alert", ["raised_by_id"], unique=False
    )
    op.create_index(op.f("ix_safety_alert_trip_id"), "safety_alert", ["trip_id"], unique=False)
    op.create_table(
        "safety_alert_position",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["safety_alert.id"],
            name=op.f("fk_safety_alert_position_alert_id_safety_alert"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_alert_position")),
    )
    op.create_index(
        op.f("ix_safety_alert_position_alert_id"),
        "safety_alert_position",
        ["alert_id"],
        unique=False,
    )
    op.create_table(
        "safety_alert_note",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["safety_alert.id"],
            name=op.f("fk_safety_alert_note_alert_id_safety_alert"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_alert_note")),
    )
    op.create_index(
        op.f("ix_safety_alert_note_alert_id"), "safety_alert_note", ["alert_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("safety_alert_note")
    op.drop_table("safety_alert_position")
    op.drop_table("safety_alert")
