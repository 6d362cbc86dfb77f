"""The collective agreement on the wire: versions, diffs, proposals, tallies and ballots."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bargaining.diff import Change
from bargaining.models import AgreementVersion, BallotChoice, Proposal, ProposalStatus
from bargaining.secrecy import OwnBallot
from bargaining.terms import Terms
from dispatch.core.text import FreeText, Title


class AgreementOut(BaseModel):
    version: int
    effective_from: datetime
    sha256: str = Field(description="sha256 of the terms' canonical JSON")
    terms: Terms
    proposal_id: uuid.UUID | None = Field(description="The ratified proposal; null for founding")
    created_at: datetime

    @classmethod
    def of(cls, row: AgreementVersion) -> AgreementOut:
        return cls(
            version=row.version,
            effective_from=row.effective_from,
            sha256=row.sha256,
            terms=row.terms,
            proposal_id=row.proposal_id,
            created_at=row.created_at,
        )


class ChangeOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    path: str = Field(examples=["fares.standard.per_km"])
    from_: Any = Field(alias="from", description="null where the path did not exist")
    to: Any = Field(description="null where the path no longer exists")

    @classmethod
    def of(cls, change: Change) -> ChangeOut:
        return cls(path=change.path, from_=change.before, to=change.after)


class ProposalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Title
    rationale: Annotated[str, FreeText(max_chars=20_000)]
    terms: Terms
    effective_from: AwareDatetime | None = Field(
        default=None, description="null: in force as soon as it is ratified"
    )
    voting_closes_at: AwareDatetime


class TotalsOut(BaseModel):
    driver_earnings: str
    coop_commission: str
    median_fare: str | None


class ImpactOut(BaseModel):
    trips: int = Field(description="How many completed trips were re-priced (zero is valid)")
    window_days: int
    currency_before: str
    currency_after: str
    before: TotalsOut
    after: TotalsOut


class TallyOut(BaseModel):
    yes: int
    no: int
    abstain: int
    eligible: int
    turnout_percent: str
    reason: str = Field(description="approved, quorum_not_met or not_approved")


class ProposalOut(BaseModel):
    id: uuid.UUID
    title: str
    rationale: str
    status: ProposalStatus
    terms: Terms
    terms_sha256: str
    base_version: int = Field(description="The version in force when the vote opened")
    effective_from: datetime | None
    voting_closes_at: datetime
    opened_at: datetime
    closed_at: datetime | None
    eligible: int = Field(description="Members on the roll: those active when the vote opened")
    diff: list[ChangeOut]
    impact: ImpactOut
    tally: TallyOut | None = Field(description="Only once closed; never a running count")
    version: int | None = Field(description="The agreement version it became, once ratified")

    @classmethod
    def of(cls, proposal: Proposal, diff: list[Change]) -> ProposalOut:
        tally = None
        if proposal.status is not ProposalStatus.open:
            assert proposal.turnout_percent is not None and proposal.outcome_reason is not None
            tally = TallyOut(
                yes=proposal.yes or 0,
                no=proposal.no or 0,
                abstain=proposal.abstain or 0,
                eligible=proposal.eligible,
                turnout_percent=f"{proposal.turnout_percent:.2f}",
                reason=proposal.outcome_reason,
            )
        return cls(
            id=proposal.id,
            title=proposal.title,
            rationale=proposal.rationale,
            status=proposal.status,
            terms=proposal.terms,
            terms_sha256=proposal.terms_sha256,
            base_version=proposal.base_version,
            effective_from=proposal.effective_from,
            voting_closes_at=proposal.voting_closes_at,
            opened_at=proposal.opened_at,
            closed_at=proposal.closed_at,
            eligible=proposal.eligible,
            diff=[ChangeOut.of(change) for change in diff],
            impact=ImpactOut.model_validate(proposal.impact),
            tally=tally,
            version=proposal.result_version,
        )


class BallotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    choice: BallotChoice


class BallotOut(BaseModel):
    """The caller's own ballot; nobody else's is ever shown."""

    proposal_id: uuid.UUID
    eligible: bool = Field(description="Whether the caller is on this vote's roll")
    choice: BallotChoice | None = Field(
        description="The caller's choice while the vote is open; null if none, or once sealed"
    )
    cast_at: datetime | None
    sealed: bool = Field(
        default=False,
        description="The vote has closed and its ballot key is destroyed: no one can tell any "
        "more which ballot is the caller's (it is counted in the tally)",
    )

    @classmethod
    def of(cls, proposal_id: uuid.UUID, ballot: OwnBallot) -> BallotOut:
        return cls(
            proposal_id=proposal_id,
            eligible=ballot.eligible,
            choice=ballot.choice,
            cast_at=ballot.cast_at,
            sealed=ballot.sealed,
        )
