"""The qualification register: a driver's legal qualification and a car's register, as facts.

Revision ID: qualification_register
Revises: simulated_drivers
Create Date: 2026-12-07
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "qualification_register"
down_revision: str | Sequence[str] | None = "simulated_drivers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _vehicle_columns() -> list[tuple[str, sa.types.TypeEngine[Any]]]:
    return [
        ("vin", sa.String(17)),
        ("make", sa.String(40)),
        ("model", sa.String(40)),
        ("year", sa.SmallInteger()),
        ("colour", sa.String(30)),
        ("owner", sa.String(200)),
        ("odometer_km", sa.Integer()),
        ("inspection_due_on", sa.Date()),
    ]


def upgrade() -> None:
    op.create_table(
        "driver_qualification",
        sa.Column(
            "driver_id",
            sa.Uuid(),
            sa.ForeignKey("driver.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("licence_number", sa.String(32), nullable=True),
        sa.Column("training_certificate_on", sa.Date(), nullable=True),
        sa.Column("record_check_on", sa.Date(), nullable=True),
        sa.Column("record_check_clear", sa.Boolean(), nullable=True),
        sa.Column("authorization_expires_on", sa.Date(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "driver_register_entry",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "driver_id",
            sa.Uuid(),
            sa.ForeignKey("driver.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("facts", postgresql.JSONB(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_driver_register_entry_driver_id", "driver_register_entry", ["driver_id"])
    for name, type_ in _vehicle_columns():
        op.add_column("driver_vehicle", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    for name, _ in reversed(_vehicle_columns()):
        op.drop_column("driver_vehicle", name)
    op.drop_index("ix_driver_register_entry_driver_id", table_name="driver_register_entry")
    op.drop_table("driver_register_entry")
    op.drop_table("driver_qualification")
