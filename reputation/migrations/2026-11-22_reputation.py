"""Reputation: rateable trips, ratings, appeals, support cases; driver status changes.

Revision ID: reputation
Revises: foundation
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "reputation"
down_revision: str | Sequence[str] | None = "foundation"
branch_labels: str | Sequence[str] | None = ("open_reputation",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    appeal_status = postgresql.ENUM("open", "decided", name="reputation_appeal_status")
    appeal_outcome = postgresql.ENUM(
        "rating_removed", "rating_stands", name="reputation_appeal_outcome"
    )
    driver_status = postgresql.ENUM("active", "inactive", name="driver_status", create_type=False)

    op.create_table(
        "reputation_rateable_trip",
        sa.Column("trip_id", sa.Uuid(), nullable=False),
        sa.Column("rider_id", sa.Uuid(), nullable=False),
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rider_id"],
            ["rider.id"],
            name=op.f("fk_reputation_rateable_trip_rider_id_rider"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_reputation_rateable_trip_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("trip_id", name=op.f("pk_reputation_rateable_trip")),
    )
    op.create_index(
        op.f("ix_reputation_rateable_trip_rider_id"), "reputation_rateable_trip", ["rider_id"]
    )
    op.create_index(
        op.f("ix_reputation_rateable_trip_driver_id"), "reputation_rateable_trip", ["driver_id"]
    )

    op.create_table(
        "reputation_rating",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("trip_id", sa.Uuid(), nullable=False),
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("rider_id", sa.Uuid(), nullable=False),
        sa.Column("stars", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.String(1000), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.String(32)), nullable=False),
        sa.Column("trip_completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("stars BETWEEN 1 AND 5", name=op.f("ck_reputation_rating_stars_range")),
        sa.ForeignKeyConstraint(
            ["trip_id"],
            ["reputation_rateable_trip.trip_id"],
            name=op.f("fk_reputation_rating_trip_id_reputation_rateable_trip"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_reputation_rating_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rider_id"],
            ["rider.id"],
            name=op.f("fk_reputation_rating_rider_id_rider"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reputation_rating")),
        sa.UniqueConstraint("trip_id", name=op.f("uq_reputation_rating_trip_id")),
    )
    op.create_index(op.f("ix_reputation_rating_driver_id"), "reputation_rating", ["driver_id"])
    op.create_index(op.f("ix_reputation_rating_rider_id"), "reputation_rating", ["rider_id"])

    op.create_table(
        "reputation_appeal",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rating_id", sa.Uuid(), nullable=False),
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("statement", sa.String(2000), nullable=False),
        sa.Column("status", appeal_status, nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", appeal_outcome, nullable=True),
        sa.Column("reason", sa.String(2000), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(status = 'open' AND outcome IS NULL AND decided_at IS NULL AND reason IS NULL)"
            " OR (status = 'decided' AND outcome IS NOT NULL AND decided_at IS NOT NULL"
            " AND reason IS NOT NULL)",
            name=op.f("ck_reputation_appeal_decision_complete"),
        ),
        sa.ForeignKeyConstraint(
            ["rating_id"],
            ["reputation_rating.id"],
            name=op.f("fk_reputation_appeal_rating_id_reputation_rating"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_reputation_appeal_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["driver.id"],
            name=op.f("fk_reputation_appeal_decided_by_driver"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reputation_appeal")),
        sa.UniqueConstraint("rating_id", name=op.f("uq_reputation_appeal_rating_id")),
    )
    op.create_index(op.f("ix_reputation_appeal_driver_id"), "reputation_appeal", ["driver_id"])
    op.create_index(op.f("ix_reputation_appeal_decided_by"), "reputation_appeal", ["decided_by"])
    op.create_index(
        op.f("ix_reputation_appeal_status_due_by"), "reputation_appeal", ["status", "due_by"]
    )

    op.create_table(
        "reputation_support_case",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Numeric(3, 2), nullable=False),
        sa.Column("support_threshold", sa.Numeric(3, 2), nullable=False),
        sa.Column("agreement_version", sa.Integer(), nullable=False),
        sa.Column("recovered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_reputation_support_case_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reputation_support_case")),
    )
    op.create_index(
        op.f("ix_reputation_support_case_driver_id"), "reputation_support_case", ["driver_id"]
    )
    op.create_index(
        op.f("uq_reputation_support_case_current_driver_id"),
        "reputation_support_case",
        ["driver_id"],
        unique=True,
        postgresql_where=sa.text("recovered_at IS NULL"),
    )

    op.create_table(
        "driver_status_change",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", driver_status, nullable=False),
        sa.Column("to_status", driver_status, nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_driver_status_change_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_driver_status_change")),
    )
    op.create_index(
        op.f("ix_driver_status_change_driver_id"), "driver_status_change", ["driver_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_driver_status_change_driver_id"), table_name="driver_status_change")
    op.drop_table("driver_status_change")
    op.drop_index(
        op.f("uq_reputation_support_case_current_driver_id"),
        table_name="reputation_support_case",
    )
    op.drop_index(
        op.f("ix_reputation_support_case_driver_id"), table_name="reputation_support_case"
    )
    op.drop_table("reputation_support_case")
    op.drop_index(op.f("ix_reputation_appeal_status_due_by"), table_name="reputation_appeal")
    op.drop_index(op.f("ix_reputation_appeal_decided_by"), table_name="reputation_appeal")
    op.drop_index(op.f("ix_reputation_appeal_driver_id"), table_name="reputation_appeal")
    op.drop_table("reputation_appeal")
    op.drop_index(op.f("ix_reputation_rating_rider_id"), table_name="reputation_rating")
    op.drop_index(op.f("ix_reputation_rating_driver_id"), table_name="reputation_rating")
    op.drop_table("reputation_rating")
    op.drop_index(
        op.f("ix_reputation_rateable_trip_driver_id"), table_name="reputation_rateable_trip"
    )
    op.drop_index(
        op.f("ix_reputation_rateable_trip_rider_id"), table_name="reputation_rateable_trip"
    )
    op.drop_table("reputation_rateable_trip")
    sa.Enum(name="reputation_appeal_outcome").drop(op.get_bind())
    sa.Enum(name="reputation_appeal_status").drop(op.get_bind())
