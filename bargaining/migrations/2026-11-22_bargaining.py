"""Bargaining: agreement versions, proposals and ballots.

Revision ID: bargaining
Revises: foundation
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "bargaining"
down_revision: str | Sequence[str] | None = "foundation"
branch_labels: str | Sequence[str] | None = ("collective_agreement",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    proposal_status = postgresql.ENUM("open", "ratified", "rejected", name="proposal_status")
    ballot_choice = postgresql.ENUM("yes", "no", "abstain", name="ballot_choice")
    op.create_table(
        "agreement_version",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("terms", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("proposal_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_agreement_version")),
        sa.UniqueConstraint("proposal_id", name=op.f("uq_agreement_version_proposal_id")),
    )
    op.create_index(
        op.f("ix_agreement_version_effective_from"), "agreement_version", ["effective_from"]
    )
    op.create_table(
        "bargaining_proposal",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("terms", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("terms_sha256", sa.String(64), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voting_closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", proposal_status, nullable=False),
        sa.Column("proposed_by", sa.Uuid(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("eligible", sa.Integer(), nullable=False),
        sa.Column("impact", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("yes", sa.Integer(), nullable=True),
        sa.Column("no", sa.Integer(), nullable=True),
        sa.Column("abstain", sa.Integer(), nullable=True),
        sa.Column("turnout_percent", sa.Numeric(5, 2), nullable=True),
        sa.Column("outcome_reason", sa.String(32), nullable=True),
        sa.Column("result_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["base_version"],
            ["agreement_version.version"],
            name=op.f("fk_bargaining_proposal_base_version_agreement_version"),
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by"],
            ["driver.id"],
            name=op.f("fk_bargaining_proposal_proposed_by_driver"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bargaining_proposal")),
    )
    op.create_index(
        op.f("ix_bargaining_proposal_open_closes_at"),
        "bargaining_proposal",
        ["voting_closes_at"],
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_foreign_key(
        op.f("fk_agreement_version_proposal_id_bargaining_proposal"),
        "agreement_version",
        "bargaining_proposal",
        ["proposal_id"],
        ["id"],
    )
    op.create_table(
        "bargaining_ballot",
        sa.Column("proposal_id", sa.Uuid(), nullable=False),
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("choice", ballot_choice, nullable=True),
        sa.Column("cast_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_bargaining_ballot_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["bargaining_proposal.id"],
            name=op.f("fk_bargaining_ballot_proposal_id_bargaining_proposal"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("proposal_id", "driver_id", name=op.f("pk_bargaining_ballot")),
    )
    # A version, once written, is never changed or removed: trips record the version that
    # priced them. (Row triggers: TRUNCATE, used only by the test suite's clean-up, still works.)
    op.execute(
        """
        CREATE FUNCTION agreement_version_immutable() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'agreement versions are immutable: % refused', TG_OP;
        END;
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER agreement_version_immutable
        BEFORE UPDATE OR DELETE ON agreement_version
        FOR EACH ROW EXECUTE FUNCTION agreement_version_immutable()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER agreement_version_immutable ON agreement_version")
    op.execute("DROP FUNCTION agreement_version_immutable()")
    op.drop_table("bargaining_ballot")
    op.drop_constraint(
        op.f("fk_agreement_version_proposal_id_bargaining_proposal"),
        "agreement_version",
        type_="foreignkey",
    )
    op.drop_index(op.f("ix_bargaining_proposal_open_closes_at"), table_name="bargaining_proposal")
    op.drop_table("bargaining_proposal")
    op.drop_index(op.f("ix_agreement_version_effective_from"), table_name="agreement_version")
    op.drop_table("agreement_version")
    sa.Enum(name="ballot_choice").drop(op.get_bind())
    sa.Enum(name="proposal_status").drop(op.get_bind())
