"""Joins two revisions written at once (nothing to change): the domain has one latest again.

Join driver safety and folded name

Revision ID: drivers_join_1207
Revises: driver_safety, driver_folded_name
Create Date: 2026-12-07
"""

from collections.abc import Sequence

revision: str = "drivers_join_1207"
down_revision: str | Sequence[str] | None = ("driver_safety", "driver_folded_name")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
