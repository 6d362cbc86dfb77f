"""Pay: pay periods, and the statements and statement lines written when a period closes.

Revision ID: dispatch_pay
Revises: offer_delivery
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "dispatch_pay"
down_revision: str | Sequence[str] | None = "offer_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    line_kind = postgresql.ENUM("trip", "cancellation_fee", name="pay_line_kind")
    op.create_table(
        "pay_period",
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("period_days", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("floor_version", sa.Integer(), nullable=True),
        sa.Column("floor_per_hour", sa.Numeric(12, 2), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.PrimaryKeyConstraint("start_date", name=op.f("pk_pay_period")),
        sa.UniqueConstraint("starts_at", name=op.f("uq_pay_period_starts_at")),
        sa.UniqueConstraint("ends_at", name=op.f("uq_pay_period_ends_at")),
    )
    op.create_index(
        "ix_pay_period_open_ends_at",
        "pay_period",
        ["ends_at"],
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    amount = sa.Numeric(12, 2)
    op.create_table(
        "pay_statement",
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("trips", sa.Integer(), nullable=False),
        sa.Column("fares_total", amount, nullable=False),
        sa.Column("commission_total", amount, nullable=False),
        sa.Column("earnings_total", amount, nullable=False),
        sa.Column("cancellation_fees_total", amount, nullable=False),
        sa.Column("engaged_seconds", sa.Integer(), nullable=False),
        sa.Column("floor_due", amount, nullable=False),
        sa.Column("top_up", amount, nullable=False),
        sa.Column("pay_total", amount, nullable=False),
        sa.ForeignKeyConstraint(
            ["driver_id"], ["driver.id"], name=op.f("fk_pay_statement_driver_id_driver")
        ),
        sa.ForeignKeyConstraint(
            ["period_start"],
            ["pay_period.start_date"],
            name=op.f("fk_pay_statement_period_start_pay_period"),
        ),
        sa.PrimaryKeyConstraint("period_start", "driver_id", name=op.f("pk_pay_statement")),
    )
    op.create_table(
        "pay_statement_line",
        sa.Column("trip_id", sa.Uuid(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("driver_id", sa.Uuid(), nullable=False),
        sa.Column("kind", line_kind, nullable=False),
        sa.Column("adjustment", sa.Boolean(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("engaged_seconds", sa.Integer(), nullable=False),
        sa.Column("distance_m", sa.Integer(), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.Column("fare_total", amount, nullable=False),
        sa.Column("commission", amount, nullable=False),
        sa.Column("driver_earnings", amount, nullable=False),
        sa.Column("cancellation_fee", amount, nullable=False),
        sa.Column("agreement_version", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.ForeignKeyConstraint(
            ["driver_id"], ["driver.id"], name=op.f("fk_pay_statement_line_driver_id_driver")
        ),
        sa.ForeignKeyConstraint(
            ["period_start"],
            ["pay_period.start_date"],
            name=op.f("fk_pay_statement_line_period_start_pay_period"),
        ),
        sa.ForeignKeyConstraint(
            ["trip_id"], ["trip.id"], name=op.f("fk_pay_statement_line_trip_id_trip")
        ),
        sa.PrimaryKeyConstraint("trip_id", name=op.f("pk_pay_statement_line")),
    )
    op.create_index(
        "ix_pay_statement_line_statement", "pay_statement_line", ["period_start", "driver_id"]
    )
    # A closed statement never changes. (Row triggers: the test suite's TRUNCATE still works.)
    op.execute(
        """
        CREATE FUNCTION pay_statement_immutable() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'closed pay statements never change: % refused', TG_OP;
        END;
        $$
        """
    )
    for table in ("pay_statement", "pay_statement_line"):
        op.execute(
            f"""
            CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION pay_statement_immutable()
            """
        )


def downgrade() -> None:
    for table in ("pay_statement_line", "pay_statement"):
        op.execute(f"DROP TRIGGER {table}_immutable ON {table}")
    op.execute("DROP FUNCTION pay_statement_immutable()")
    op.drop_index("ix_pay_statement_line_statement", table_name="pay_statement_line")
    op.drop_table("pay_statement_line")
    op.drop_table("pay_statement")
    op.drop_index("ix_pay_period_open_ends_at", table_name="pay_period")
    op.drop_table("pay_period")
    sa.Enum(name="pay_line_kind").drop(op.get_bind())
