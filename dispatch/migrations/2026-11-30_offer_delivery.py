"""Offer delivery: when the driver's socket wrote the offer, and the `undelivered` ending.

An offer counts as delivered only once the worker holding the driver's socket wrote it; one that
times out without that ends `undelivered` (not `expired`), and its driver stays eligible.

Revision ID: offer_delivery
Revises: dispatch_trust_meter
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "offer_delivery"
down_revision: str | Sequence[str] | None = "dispatch_trust_meter"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TYPE trip_offer_status ADD VALUE IF NOT EXISTS 'undelivered'")
    op.add_column(
        "trip_offer", sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("trip_offer", "delivered_at")
    # PostgreSQL cannot drop one value of an enum: rebuild the type without it.
    op.execute("UPDATE trip_offer SET status = 'expired' WHERE status = 'undelivered'")
    op.execute("ALTER TYPE trip_offer_status RENAME TO trip_offer_status_old")
    op.execute(
        "CREATE TYPE trip_offer_status AS ENUM "
        "('pending', 'accepted', 'declined', 'expired', 'withdrawn')"
    )
    op.execute("DROP INDEX IF EXISTS uq_trip_offer_pending_trip_id")
    op.execute("DROP INDEX IF EXISTS uq_trip_offer_pending_driver_id")
    op.execute("DROP INDEX IF EXISTS ix_trip_offer_pending_expires_at")
    op.execute(
        "ALTER TABLE trip_offer ALTER COLUMN status TYPE trip_offer_status "
        "USING status::text::trip_offer_status"
    )
    op.execute("DROP TYPE trip_offer_status_old")
    op.execute(
        "CREATE UNIQUE INDEX uq_trip_offer_pending_trip_id ON trip_offer (trip_id) "
        "WHERE status = 'pending'"
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_trip_offer_pending_driver_id ON trip_offer (driver_id) "
        "WHERE status = 'pending'"
    )
    op.execute(
        "CREATE INDEX ix_trip_offer_pending_expires_at ON trip_offer (expires_at) "
        "WHERE status = 'pending'"
    )
