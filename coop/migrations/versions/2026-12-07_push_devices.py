"""Web Push: the devices an account registered (push subscriptions, each tied to the token it
was registered with) and each account's choice of what it is pushed.

Revision ID: push_devices
Revises: token_families
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "push_devices"
down_revision: str | Sequence[str] | None = "token_families"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLE = postgresql.ENUM("rider", "driver", "admin", name="auth_role", create_type=False)


def upgrade() -> None:
    op.create_table(
        "push_device",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("role", _ROLE, nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("endpoint", sa.String(2048), nullable=False),
        sa.Column("p256dh", sa.String(100), nullable=False),
        sa.Column("auth", sa.String(40), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_pushed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["token_hash"],
            ["auth_token.token_hash"],
            name=op.f("fk_push_device_token_hash_auth_token"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_device")),
        sa.UniqueConstraint("endpoint", name=op.f("uq_push_device_endpoint")),
    )
    op.create_index(op.f("ix_push_device_subject_id"), "push_device", ["subject_id"])
    op.create_index(op.f("ix_push_device_token_hash"), "push_device", ["token_hash"])
    op.create_table(
        "push_preference",
        sa.Column("role", _ROLE, nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("kinds", postgresql.ARRAY(sa.String(16)), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("role", "subject_id", name=op.f("pk_push_preference")),
    )


def downgrade() -> None:
    op.drop_table("push_preference")
    op.drop_index(op.f("ix_push_device_token_hash"), table_name="push_device")
    op.drop_index(op.f("ix_push_device_subject_id"), table_name="push_device")
    op.drop_table("push_device")
