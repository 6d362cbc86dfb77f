"""Joins five revisions written at once (nothing to change): the domain has one latest again.

Join the ride check, SOS alerts, share links, the PIN at pickup and the replay's index

Revision ID: dispatch_join_1207b
Revises: ride_check, safety_alerts, dispatch_safety_trip_share, trip_pin,
    dispatch_trip_region_requested
Create Date: 2026-12-07
"""

from collections.abc import Sequence

revision: str = "dispatch_join_1207b"
down_revision: str | Sequence[str] | None = (
    "ride_check",
    "safety_alerts",
    "dispatch_safety_trip_share",
    "trip_pin",
    "dispatch_trip_region_requested",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
