"""Tables of the collective agreement: its versions, the proposals to change it, and ballots."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from bargaining.terms import Terms, stored_terms
from coop.db import Base, utcnow


class AgreementVersion(Base):
    """One version of the agreement, immutable once written (a trigger refuses changes)."""

    __tablename__ = "agreement_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    effective_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    terms_json: Mapped[dict[str, Any]] = mapped_column("terms", JSONB)
    sha256: Mapped[str] = mapped_column(String(64))
    proposal_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("bargaining_proposal.id", use_alter=True), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @cached_property
    def terms(self) -> Terms:
        return stored_terms(self.terms_json)


class ProposalStatus(enum.StrEnum):
    open = "open"
    ratified = "ratified"
    rejected = "rejected"
    withdrawn = "withdrawn"  # by the committee before the close, with a reason; never counted


class ProposalKind(enum.StrEnum):
    terms = "terms"  # new terms of the agreement: a new version once ratified
    patronage = "patronage"  # a patronage dividend: posted to the ledger once ratified


class BallotChoice(enum.StrEnum):
    yes = "yes"
    no = "no"
    abstain = "abstain"


class Proposal(Base):
    """New terms put to the members' vote by the bargaining committee."""

    __tablename__ = "bargaining_proposal"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[ProposalKind] = mapped_column(
        Enum(ProposalKind, name="proposal_kind"),
        default=ProposalKind.terms,
        server_default=ProposalKind.terms.value,
    )
    title: Mapped[str] = mapped_column(String(200))
    rationale: Mapped[str] = mapped_column(Text)
    # Null for a patronage proposal, which changes no term.
    terms_json: Mapped[dict[str, Any] | None] = mapped_column("terms", JSONB)
    terms_sha256: Mapped[str | None] = mapped_column(String(64))
    # A patronage proposal: its period, surplus and the allocation it would make (docs/pay.md).
    patronage: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The version in force when the proposal opened: the diff is against it, and its
    # governance rules decide the vote.
    base_version: Mapped[int] = mapped_column(ForeignKey("agreement_version.version"))
    effective_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    voting_closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[ProposalStatus] = mapped_column(
        Enum(ProposalStatus, name="proposal_status"), default=ProposalStatus.open
    )
    proposed_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("driver.id", ondelete="SET NULL")
    )
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    eligible: Mapped[int] = mapped_column(Integer)  # the roll's size when the vote opened
    impact: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    yes: Mapped[int | None] = mapped_column(Integer)
    no: Mapped[int | None] = mapped_column(Integer)
    abstain: Mapped[int | None] = mapped_column(Integer)
    turnout_percent: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    outcome_reason: Mapped[str | None] = mapped_column(String(32))
    result_version: Mapped[int | None] = mapped_column(Integer)
    # Why the committee withdrew it (public, like the rationale); null unless withdrawn.
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(
            "ix_bargaining_proposal_open_closes_at",
            "voting_closes_at",
            postgresql_where=text("status = 'open'"),
        ),
    )

    @cached_property
    def terms(self) -> Terms:
        if self.terms_json is None:
            raise ValueError(f"proposal {self.id} is a {self.kind} proposal: it has no terms")
        return stored_terms(self.terms_json)


class Ballot(Base):
    """The roll of a vote, one row per eligible member, written when the proposal opens, and
    never written again: it holds who may vote, not what anyone chose (`SealedBallot`)."""

    __tablename__ = "bargaining_ballot"

    proposal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bargaining_proposal.id", ondelete="CASCADE"), primary_key=True
    )
    driver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("driver.id", ondelete="CASCADE"), primary_key=True
    )


class SealedBallot(Base):
    """A choice, under the voter's tag: HMAC-SHA256 of the member's id under the proposal's
    ballot key (`bargaining.secrecy`). One row per voter and proposal; voting again overwrites
    the choice. No column names the member, and the tag cannot be recomputed from the database
    alone; once the proposal closes, by no one. Nor is it dated: a moment, even a day, could be
    joined with whatever else records who did something then."""

    __tablename__ = "bargaining_sealed_ballot"

    proposal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bargaining_proposal.id", ondelete="CASCADE"), primary_key=True
    )
    voter_tag: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    choice: Mapped[BallotChoice] = mapped_column(Enum(BallotChoice, name="ballot_choice"))


class BallotKey(Base):
    """The salt of an open proposal's ballot key, deleted when the vote closes.

    The key itself is HMAC-SHA256(COOP_BALLOT_KEY, proposal id + salt): the database holds only
    the salt, the service only the master key; with the salt gone, no one can tell whose tag is
    whose, the service included."""

    __tablename__ = "bargaining_ballot_key"

    proposal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bargaining_proposal.id", ondelete="CASCADE"), primary_key=True
    )
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))


class PatronageAllocation(Base):
    """A ratified patronage dividend, posted once (a trigger refuses changes). No two allocated
    periods overlap (an exclusion constraint in the migration)."""

    __tablename__ = "patronage_allocation"

    proposal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bargaining_proposal.id"), primary_key=True
    )
    period_from: Mapped[date] = mapped_column(Date)
    period_to: Mapped[date] = mapped_column(Date)  # inclusive
    basis: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    surplus: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    reserve_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    reserve: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    distributable: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    members: Mapped[int] = mapped_column(Integer)
    allocated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PatronageLine(Base):
    """One member's share of a ratified dividend."""

    __tablename__ = "patronage_line"

    proposal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patronage_allocation.proposal_id"), primary_key=True
    )
    driver_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("driver.id"), primary_key=True)
    measure: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    share: Mapped[Decimal] = mapped_column(Numeric(14, 2))
