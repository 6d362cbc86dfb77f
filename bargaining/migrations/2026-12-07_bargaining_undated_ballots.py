"""Bargaining: a sealed ballot keeps no date (`cast_at` dropped).

A ballot's moment could be joined with anything else that records who did something then, down
to the millisecond (docs/agreement.md, "Ballot secrecy"); even its day can single a voter out on
a quiet day. The existing ballots are rewritten first, so that they all carry this migration's
transaction id rather than ids that order them in time. Downgrading dates each ballot at its
proposal's opening.

Revision ID: bargaining_undated_ballots
Revises: bargaining_patronage
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bargaining_undated_ballots"
down_revision: str | Sequence[str] | None = "bargaining_patronage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE bargaining_sealed_ballot SET choice = choice")
    op.drop_column("bargaining_sealed_ballot", "cast_at")


def downgrade() -> None:
    op.add_column(
        "bargaining_sealed_ballot",
        sa.Column("cast_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.execute(
        "UPDATE bargaining_sealed_ballot AS ballot SET cast_at = proposal.opened_at"
        " FROM bargaining_proposal AS proposal WHERE proposal.id = ballot.proposal_id"
    )
    op.alter_column("bargaining_sealed_ballot", "cast_at", nullable=False)
