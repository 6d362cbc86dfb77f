"""Dispatch: trips, offers, idempotency keys, driver positions and trip trails.

Revision ID: dispatch
Revises: foundation
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geography
from sqlalchemy.dialects import postgresql

revision: str = "dispatch"
down_revision: str | Sequence[str] | None = "foundation"
# A branch label may not repeat the revision id, so the branch is named after the issue.
branch_labels: str | Sequence[str] | None = ("realtime_dispatch",)
depends_on: str | Sequence[str] | None = None

DRIVER_OPEN = "status IN ('assigned', 'arrived', 'in_progress')"
RIDER_OPEN = "status IN ('requested', 'assigned', 'arrived', 'in_progress')"


def _point() -> Geography:
    return Geography("POINT", srid=4326, spatial_index=False)


def upgrade() -> None:
    trip_status = postgresql.ENUM(
        "requested",
        "assigned",
        "arrived",
        "in_progress",
        "completed",
        "cancelled",
        "unfulfilled",
        name="trip_status",
    )
    cancelled_by = postgresql.ENUM("rider", "driver", name="trip_cancelled_by")
    offer_status = postgresql.ENUM(
        "pending", "accepted", "declined", "expired", "withdrawn", name="trip_offer_status"
    )
    op.create_table(
        "trip",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rider_id", sa.Uuid(), nullable=False),
        sa.Column("driver_id", sa.Uuid(), nullable=True),
        sa.Column("status", trip_status, nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("pickup", _point(), nullable=False),
        sa.Column("dropoff", _point(), nullable=False),
        sa.Column("wheelchair_accessible", sa.Boolean(), nullable=False),
        sa.Column("service_class", sa.String(32), nullable=False),
        sa.Column("agreement_version", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("quote", postgresql.JSONB(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("matching_deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(500), nullable=True),
        sa.Column("cancelled_by", cancelled_by, nullable=True),
        sa.Column("cancellation_fee", sa.Numeric(9, 2), nullable=True),
        sa.Column("distance_m", sa.Integer(), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.Column("fare", postgresql.JSONB(), nullable=True),
        sa.Column("fare_total", sa.Numeric(9, 2), nullable=True),
        sa.Column("driver_earnings", sa.Numeric(9, 2), nullable=True),
        sa.Column("coop_commission", sa.Numeric(9, 2), nullable=True),
        sa.CheckConstraint(
            "status NOT IN ('assigned', 'arrived', 'in_progress', 'completed') "
            "OR driver_id IS NOT NULL",
            name=op.f("ck_trip_driver_when_assigned"),
        ),
        sa.ForeignKeyConstraint(["rider_id"], ["rider.id"], name=op.f("fk_trip_rider_id_rider")),
        sa.ForeignKeyConstraint(
            ["driver_id"], ["driver.id"], name=op.f("fk_trip_driver_id_driver")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trip")),
    )
    op.create_index(op.f("ix_trip_rider_id"), "trip", ["rider_id"])
    op.create_index(op.f("ix_trip_driver_id"), "trip", ["driver_id"])
    op.create_index(
        op.f("uq_trip_open_driver_id"),
        "trip",
        ["driver_id"],
        unique=True,
        postgresql_where=sa.text(DRIVER_OPEN),
    )
    op.create_index(
        op.f("uq_trip_open_rider_id"),
        "trip",
        ["rider_id"],
        unique=True,
        postgresql_where=sa.text(RIDER_OPEN),
    )
    op.create_index(
        op.f("ix_trip_requested_region"),
        "trip",
        ["region", "requested_at"],
        postgresql_where=sa.text("status = 'requested'"),
    )

    op.create_table(
        "trip_offer",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("trip_id", sa.Uuid(), nullable=False),
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("status", offer_status, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pickup_distance_m", sa.Integer(), nullable=False),
        sa.Column("pickup_eta_s", sa.Integer(), nullable=False),
        sa.Column("idle_s", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Integer(), nullable=False),
        sa.Column("why", sa.String(500), nullable=False),
        sa.ForeignKeyConstraint(
            ["trip_id"], ["trip.id"], name=op.f("fk_trip_offer_trip_id_trip"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_trip_offer_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trip_offer")),
    )
    op.create_index(op.f("ix_trip_offer_trip_id"), "trip_offer", ["trip_id"])
    op.create_index(op.f("ix_trip_offer_driver_id"), "trip_offer", ["driver_id"])
    op.create_index(
        op.f("uq_trip_offer_pending_trip_id"),
        "trip_offer",
        ["trip_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("uq_trip_offer_pending_driver_id"),
        "trip_offer",
        ["driver_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("ix_trip_offer_pending_expires_at"),
        "trip_offer",
        ["expires_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )

    op.create_table(
        "trip_request_key",
        sa.Column("rider_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("trip_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rider_id"],
            ["rider.id"],
            name=op.f("fk_trip_request_key_rider_id_rider"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trip_id"],
            ["trip.id"],
            name=op.f("fk_trip_request_key_trip_id_trip"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("rider_id", "key", name=op.f("pk_trip_request_key")),
    )

    op.create_table(
        "location_driver_position",
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("position", _point(), nullable=True),
        sa.Column("heading_deg", sa.Float(), nullable=True),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("available_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_location_driver_position_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("driver_id", name=op.f("pk_location_driver_position")),
    )
    op.create_index(
        op.f("ix_location_driver_position_position"),
        "location_driver_position",
        ["position"],
        postgresql_using="gist",
    )

    op.create_table(
        "location_trail_point",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("trip_id", sa.Uuid(), nullable=False),
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("position", _point(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["trip_id"],
            ["trip.id"],
            name=op.f("fk_location_trail_point_trip_id_trip"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_location_trail_point_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_location_trail_point")),
    )
    op.create_index(
        op.f("ix_location_trail_point_trip_id_recorded_at"),
        "location_trail_point",
        ["trip_id", "recorded_at"],
    )


def downgrade() -> None:
    op.drop_table("location_trail_point")
    op.drop_table("location_driver_position")
    op.drop_table("trip_request_key")
    op.drop_table("trip_offer")
    op.drop_table("trip")
    sa.Enum(name="trip_offer_status").drop(op.get_bind())
    sa.Enum(name="trip_cancelled_by").drop(op.get_bind())
    sa.Enum(name="trip_status").drop(op.get_bind())
