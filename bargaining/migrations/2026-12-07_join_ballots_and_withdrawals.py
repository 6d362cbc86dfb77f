"""Joins two revisions written at once (nothing to change): the domain has one latest again.

Join undated ballots and withdrawn proposals

Revision ID: bargaining_join_1207
Revises: bargaining_proposal_withdrawn, bargaining_undated_ballots
Create Date: 2026-12-07 14:28:08.077010
"""

from collections.abc import Sequence

revision: str = "bargaining_join_1207"
down_revision: str | Sequence[str] | None = (
    "bargaining_proposal_withdrawn",
    "bargaining_undated_ballots",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
