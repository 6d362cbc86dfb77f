"""Joins two revisions written at once (nothing to change): the domain has one latest again.

Join fare reviews and trip timeouts

Revision ID: dispatch_join_1207
Revises: dispatch_fare_review, dispatch_trip_timeouts
Create Date: 2026-12-07 14:28:09.547516
"""

from collections.abc import Sequence

revision: str = "dispatch_join_1207"
down_revision: str | Sequence[str] | None = ("dispatch_fare_review", "dispatch_trip_timeouts")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
