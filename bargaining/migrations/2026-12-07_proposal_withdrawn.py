"""Bargaining: the committee can withdraw an open vote, with a reason. `proposal_status` gets the
value `withdrawn` and `bargaining_proposal` the column `withdrawn_reason`.

Downgrading cannot take a value out of a PostgreSQL enum type: `withdrawn` stays in the type,
and a withdrawn proposal is recorded as rejected with nothing counted (reason `withdrawn`), the
closest the older code can read.

Revision ID: bargaining_proposal_withdrawn
Revises: bargaining_patronage
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bargaining_proposal_withdrawn"
down_revision: str | Sequence[str] | None = "bargaining_patronage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The value is not used in this transaction, so adding it inside one is allowed.
    op.execute("ALTER TYPE proposal_status ADD VALUE IF NOT EXISTS 'withdrawn'")
    op.add_column("bargaining_proposal", sa.Column("withdrawn_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    op.execute(
        "UPDATE bargaining_proposal SET status = 'rejected', outcome_reason = 'withdrawn', "
        "yes = 0, no = 0, abstain = 0, turnout_percent = 0 WHERE status = 'withdrawn'"
    )
    op.drop_column("bargaining_proposal", "withdrawn_reason")
