"""Bargaining: ballots sealed at rest. The roll keeps who may vote; choices move to
`bargaining_sealed_ballot` under each voter's tag (HMAC of the member's id under the proposal's
ballot key); `bargaining_ballot_key` holds the salt of each open proposal's key until its close.

Existing ballots are moved: an open proposal gets its salt, and its ballots their tags under the
key the service will use (so members can still change them); a closed proposal's ballots get tags
under a random key that is thrown away at once. The tallies already recorded do not change.
Downgrading cannot give the choices back to their members: it keeps the roll, without choices.

Revision ID: bargaining_sealed_ballots
Revises: bargaining
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "bargaining_sealed_ballots"
down_revision: str | Sequence[str] | None = "bargaining"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ballot_choice = postgresql.ENUM("yes", "no", "abstain", name="ballot_choice", create_type=False)
    op.create_table(
        "bargaining_ballot_key",
        sa.Column("proposal_id", sa.Uuid(), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["bargaining_proposal.id"],
            name="fk_bargaining_ballot_key_proposal_id_bargaining_proposal",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("proposal_id", name="pk_bargaining_ballot_key"),
    )
    op.create_table(
        "bargaining_sealed_ballot",
        sa.Column("proposal_id", sa.Uuid(), nullable=False),
        sa.Column("voter_tag", sa.LargeBinary(length=32), nullable=False),
        sa.Column("choice", ballot_choice, nullable=False),
        sa.Column("cast_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["bargaining_proposal.id"],
            name="fk_bargaining_sealed_ballot_proposal_id_bargaining_proposal",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("proposal_id", "voter_tag", name="pk_bargaining_sealed_ballot"),
    )
    _move_existing_ballots()
    op.drop_column("bargaining_ballot", "choice")
    op.drop_column("bargaining_ballot", "cast_at")


def _move_existing_ballots() -> None:
    import secrets

    from bargaining import secrecy

    connection = op.get_bind()
    proposals = connection.execute(sa.text("SELECT id, status FROM bargaining_proposal")).all()
    master: bytes | None = None
    for proposal_id, status in proposals:
        if status == "open":
            if master is None:
                from coop.keys import service_key
                from coop.settings import get_settings

                settings = get_settings()
                master = service_key(
                    name="ballot",
                    configured=settings.ballot_key,
                    env=settings.env,
                    data_dir=settings.data_dir,
                )
            salt = secrecy.new_salt()
            connection.execute(
                sa.text("INSERT INTO bargaining_ballot_key (proposal_id, salt) VALUES (:p, :s)"),
                {"p": proposal_id, "s": salt},
            )
            key = secrecy.ballot_key(master, proposal_id, salt)
        else:
            key = secrets.token_bytes(32)  # never stored: these tags are unlinkable at once
        ballots = connection.execute(
            sa.text(
                "SELECT driver_id, choice, cast_at FROM bargaining_ballot"
                " WHERE proposal_id = :p AND choice IS NOT NULL"
            ),
            {"p": proposal_id},
        ).all()
        for driver_id, choice, cast_at in ballots:
            connection.execute(
                sa.text(
                    "INSERT INTO bargaining_sealed_ballot (proposal_id, voter_tag, choice, cast_at)"
                    " VALUES (:p, :t, CAST(:c AS ballot_choice), :at)"
                ),
                {
                    "p": proposal_id,
                    "t": secrecy.voter_tag(key, driver_id),
                    "c": choice,
                    "at": cast_at,
                },
            )


def downgrade() -> None:
    ballot_choice = postgresql.ENUM("yes", "no", "abstain", name="ballot_choice", create_type=False)
    op.add_column("bargaining_ballot", sa.Column("choice", ballot_choice, nullable=True))
    op.add_column(
        "bargaining_ballot", sa.Column("cast_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.drop_table("bargaining_sealed_ballot")
    op.drop_table("bargaining_ballot_key")
