"""Requests for a person's review of an automated decision (docs/jurisdiction.md).

Revision ID: decision_review
Revises: reputation
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "decision_review"
down_revision: str | Sequence[str] | None = "reputation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTCOME = postgresql.ENUM("upheld", "changed", name="decision_review_outcome", create_type=False)


def upgrade() -> None:
    OUTCOME.create(op.get_bind(), checkfirst=False)
    op.create_table(
        "reputation_decision_review",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("requester_role", sa.String(16), nullable=False),
        sa.Column("requester_id", sa.Uuid(), nullable=False),
        sa.Column("decision", sa.String(40), nullable=False),
        sa.Column("trip_id", sa.Uuid(), nullable=True),
        sa.Column("offer_id", sa.Uuid(), nullable=True),
        sa.Column("statement", sa.String(2000), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", OUTCOME, nullable=True),
        sa.Column("answer", sa.String(2000), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_reputation_decision_review_requester_id",
        "reputation_decision_review",
        ["requester_id"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_reputation_decision_review_requester_id", table_name="reputation_decision_review"
    )
    op.drop_table("reputation_decision_review")
    OUTCOME.drop(op.get_bind(), checkfirst=False)
