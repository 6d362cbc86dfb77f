"""Foundation: PostGIS, accounts and tokens.

Revision ID: foundation
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "foundation"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    auth_role = postgresql.ENUM("rider", "driver", "admin", name="auth_role")
    driver_status = postgresql.ENUM("active", "inactive", name="driver_status")
    op.create_table(
        "rider",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rider")),
    )
    op.create_table(
        "driver",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("member_number", sa.String(64), nullable=False),
        sa.Column("status", driver_status, nullable=False),
        sa.Column("committee", sa.Boolean(), nullable=False),
        sa.Column("reviewer", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_driver")),
        sa.UniqueConstraint("member_number", name=op.f("uq_driver_member_number")),
    )
    op.create_table(
        "driver_vehicle",
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("plate", sa.String(16), nullable=False),
        sa.Column("seats", sa.SmallInteger(), nullable=False),
        sa.Column("wheelchair_accessible", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_driver_vehicle_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("driver_id", name=op.f("pk_driver_vehicle")),
    )
    op.create_table(
        "auth_token",
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("role", auth_role, nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_auth_token")),
    )
    op.create_index(op.f("ix_auth_token_subject_id"), "auth_token", ["subject_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_auth_token_subject_id"), table_name="auth_token")
    op.drop_table("auth_token")
    op.drop_table("driver_vehicle")
    op.drop_table("driver")
    op.drop_table("rider")
    sa.Enum(name="driver_status").drop(op.get_bind())
    sa.Enum(name="auth_role").drop(op.get_bind())
