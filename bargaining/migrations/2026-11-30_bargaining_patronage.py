"""Bargaining: proposal kinds (terms, patronage) and the patronage dividend's ledger.

Revision ID: bargaining_patronage
Revises: bargaining_sealed_ballots
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "bargaining_patronage"
down_revision: str | Sequence[str] | None = "bargaining_sealed_ballots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    proposal_kind = postgresql.ENUM("terms", "patronage", name="proposal_kind")
    proposal_kind.create(op.get_bind())
    op.add_column(
        "bargaining_proposal",
        sa.Column("kind", proposal_kind, nullable=False, server_default="terms"),
    )
    op.add_column(
        "bargaining_proposal",
        sa.Column("patronage", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.alter_column("bargaining_proposal", "terms", nullable=True)
    op.alter_column("bargaining_proposal", "terms_sha256", nullable=True)
    op.alter_column("bargaining_proposal", "impact", nullable=True)
    op.create_table(
        "patronage_allocation",
        sa.Column("proposal_id", sa.Uuid(), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("basis", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("surplus", sa.Numeric(14, 2), nullable=False),
        sa.Column("reserve_percent", sa.Numeric(5, 2), nullable=False),
        sa.Column("reserve", sa.Numeric(14, 2), nullable=False),
        sa.Column("distributable", sa.Numeric(14, 2), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["bargaining_proposal.id"],
            name=op.f("fk_patronage_allocation_proposal_id_bargaining_proposal"),
        ),
        sa.PrimaryKeyConstraint("proposal_id", name=op.f("pk_patronage_allocation")),
    )
    # A period is shared out once: no two allocations' days overlap.
    op.execute(
        """
        ALTER TABLE patronage_allocation ADD CONSTRAINT ex_patronage_allocation_period
        EXCLUDE USING gist (daterange(period_from, period_to, '[]') WITH &&)
        """
    )
    op.create_table(
        "patronage_line",
        sa.Column("proposal_id", sa.Uuid(), nullable=False),
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("measure", sa.Numeric(20, 2), nullable=False),
        sa.Column("share", sa.Numeric(14, 2), nullable=False),
        sa.ForeignKeyConstraint(
            ["driver_id"], ["driver.id"], name=op.f("fk_patronage_line_driver_id_driver")
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["patronage_allocation.proposal_id"],
            name=op.f("fk_patronage_line_proposal_id_patronage_allocation"),
        ),
        sa.PrimaryKeyConstraint("proposal_id", "driver_id", name=op.f("pk_patronage_line")),
    )
    # Posted once, never changed. (Row triggers: the test suite's TRUNCATE still works.)
    op.execute(
        """
        CREATE FUNCTION patronage_ledger_immutable() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the patronage ledger is append-only: % refused', TG_OP;
        END;
        $$
        """
    )
    for table in ("patronage_allocation", "patronage_line"):
        op.execute(
            f"""
            CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION patronage_ledger_immutable()
            """
        )


def downgrade() -> None:
    for table in ("patronage_line", "patronage_allocation"):
        op.execute(f"DROP TRIGGER {table}_immutable ON {table}")
    op.execute("DROP FUNCTION patronage_ledger_immutable()")
    op.drop_table("patronage_line")
    op.drop_table("patronage_allocation")
    op.execute("DELETE FROM bargaining_proposal WHERE kind = 'patronage'")
    op.alter_column("bargaining_proposal", "impact", nullable=False)
    op.alter_column("bargaining_proposal", "terms_sha256", nullable=False)
    op.alter_column("bargaining_proposal", "terms", nullable=False)
    op.drop_column("bargaining_proposal", "patronage")
    op.drop_column("bargaining_proposal", "kind")
    sa.Enum(name="proposal_kind").drop(op.get_bind())
