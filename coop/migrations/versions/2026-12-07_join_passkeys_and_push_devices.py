"""Joins two revisions written at once (nothing to change): the domain has one latest again.

Join passkeys and push devices

Revision ID: core_join_1207
Revises: passkeys, push_devices
Create Date: 2026-12-07
"""

from collections.abc import Sequence

revision: str = "core_join_1207"
down_revision: str | Sequence[str] | None = ("passkeys", "push_devices")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
