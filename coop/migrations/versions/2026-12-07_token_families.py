"""Tokens: families and a public id. `parent_hash` names the token another was minted with
(revoking one revokes what it minted); `bootstrap_fingerprint` names the bootstrap token an admin
token descends from (changing COOP_ADMIN_TOKEN orphans them); `id` is how an owner lists and
names their tokens.

The admin tokens that exist are taken to descend from the bootstrap token configured when this
runs (`serve` migrates with its own settings), so the next change of COOP_ADMIN_TOKEN revokes
them too.

Revision ID: token_families
Revises: token_expiry
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "token_families"
down_revision: str | Sequence[str] | None = "token_expiry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "auth_token",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
    )
    op.create_unique_constraint(op.f("uq_auth_token_id"), "auth_token", ["id"])
    op.add_column("auth_token", sa.Column("parent_hash", sa.LargeBinary(32), nullable=True))
    op.create_index(op.f("ix_auth_token_parent_hash"), "auth_token", ["parent_hash"])
    op.add_column(
        "auth_token", sa.Column("bootstrap_fingerprint", sa.LargeBinary(32), nullable=True)
    )
    _fingerprint_existing_admin_tokens()


def _fingerprint_existing_admin_tokens() -> None:
    from coop.auth import bootstrap_fingerprint
    from coop.settings import get_settings

    op.get_bind().execute(
        sa.text("UPDATE auth_token SET bootstrap_fingerprint = :f WHERE role = 'admin'"),
        {"f": bootstrap_fingerprint(get_settings().admin_token)},
    )


def downgrade() -> None:
    op.drop_column("auth_token", "bootstrap_fingerprint")
    op.drop_index(op.f("ix_auth_token_parent_hash"), table_name="auth_token")
    op.drop_column("auth_token", "parent_hash")
    op.drop_constraint(op.f("uq_auth_token_id"), "auth_token", type_="unique")
    op.drop_column("auth_token", "id")
