"""A proposal's impact replayed on recent days: the jobs and what they found.

Revision ID: bargaining_impact_replay
Revises: bargaining_join_1207
Create Date: 2026-12-07 19:25:06.489047
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "bargaining_impact_replay"
down_revision: str | Sequence[str] | None = "bargaining_join_1207"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    status = postgresql.ENUM(
        "queued", "running", "done", "over_budget", "failed", name="impact_replay_status"
    )
    status.create(op.get_bind())
    op.create_table(
        "bargaining_impact_replay",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("proposal_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(name="impact_replay_status", create_type=False),
            nullable=False,
        ),
        sa.Column("budget_s", sa.Integer(), nullable=False),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["bargaining_proposal.id"],
            name=op.f("fk_bargaining_impact_replay_proposal_id_bargaining_proposal"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bargaining_impact_replay")),
        sa.UniqueConstraint("seq", name=op.f("uq_bargaining_impact_replay_seq")),
    )
    op.create_index(
        "ix_bargaining_impact_replay_proposal_seq",
        "bargaining_impact_replay",
        ["proposal_id", "seq"],
    )
    op.create_index(
        "uq_bargaining_impact_replay_unfinished",
        "bargaining_impact_replay",
        ["proposal_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )


def downgrade() -> None:
    op.drop_table("bargaining_impact_replay")
    sa.Enum(name="impact_replay_status").drop(op.get_bind())
