"""Passkeys (WebAuthn credentials, one account each) and one-time recovery links (only their hash
kept), for signing in to the pages without typing a token (coop/passkeys.py, coop/recovery.py).

Revision ID: passkeys
Revises: token_families
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "passkeys"
down_revision: str | Sequence[str] | None = "token_families"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The type exists since the foundation (auth_token.role).
ROLE = postgresql.ENUM(name="auth_role", create_type=False)


def upgrade() -> None:
    op.create_table(
        "passkey",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("credential_id", sa.LargeBinary(1023), nullable=False),
        sa.Column("role", ROLE, nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passkey")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_passkey_credential_id")),
    )
    op.create_index(op.f("ix_passkey_subject_id"), "passkey", ["subject_id"])
    op.create_table(
        "recovery_link",
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("role", ROLE, nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("issued_by", sa.Uuid(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_recovery_link")),
    )
    op.create_index(op.f("ix_recovery_link_subject_id"), "recovery_link", ["subject_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_recovery_link_subject_id"), table_name="recovery_link")
    op.drop_table("recovery_link")
    op.drop_index(op.f("ix_passkey_subject_id"), table_name="passkey")
    op.drop_table("passkey")
