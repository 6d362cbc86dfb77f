"""The collective agreement on the wire: versions, diffs, proposals, tallies and ballots."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from bargaining.diff import Change
from bargaining.models import (
    AgreementVersion,
    BallotChoice,
    PatronageAllocation,
    Proposal,
    ProposalKind,
    ProposalStatus,
)
from bargaining.secrecy import OwnBallot
from bargaining.terms import Terms, money_str
from coop.messages import N_
from coop.text import FreeText, Title

_SURPLUS = re.compile(r"^[0-9]{1,12}(\.[0-9]+)?$")
MAX_SURPLUS = Decimal("999999999999.99")


def _surplus(value: object) -> Decimal:
    """A surplus: a decimal string of whole cents, more than zero."""
    if not isinstance(value, str):
        raise PydanticCustomError(
            "decimal_string", N_('Give the surplus as a decimal string such as "12500.00"')
        )
    text = value.strip()
    if text.startswith("-"):
        raise PydanticCustomError("negative", N_("A surplus cannot be negative"))
    if not _SURPLUS.match(text):
        raise PydanticCustomError(
            "decimal_string", N_('Give the surplus as a decimal string such as "12500.00"')
        )
    if "." in text and len(text.split(".")[1]) > 2:
        raise PydanticCustomError(
            "too_many_decimals", N_("At most 2 decimal places: a surplus is in whole cents")
        )
    amount = Decimal(text)
    if amount <= 0:
        raise PydanticCustomError("not_positive", N_("A surplus must be more than zero"))
    if amount > MAX_SURPLUS:
        raise PydanticCustomError("too_large", N_("A surplus must be at most 999999999999.99"))
    return amount.quantize(Decimal("0.01"))


Surplus = Annotated[Decimal, BeforeValidator(_surplus)]


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


class PeriodIn(BaseModel):
    """Local dates in the agreement's pay time zone, both days included."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: date = Field(alias="from")
    to: date


class ProposalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: Literal["terms", "patronage"] = Field(
        default="terms",
        description="terms: new terms of the agreement; patronage: a patronage dividend",
    )
    title: Title
    rationale: Annotated[str, FreeText(max_chars=20_000)]
    terms: Terms | None = Field(default=None, description="kind terms: the complete new terms")
    period: PeriodIn | None = Field(
        default=None, description="kind patronage: the days whose work the dividend rewards"
    )
    surplus: Surplus | None = Field(
        default=None, description='kind patronage: the surplus to share, e.g. "12500.00"'
    )
    effective_from: AwareDatetime | None = Field(
        default=None, description="null: in force as soon as it is ratified"
    )
    voting_closes_at: AwareDatetime

    @model_validator(mode="after")
    def _fields_of_kind(self) -> ProposalCreate:
        problems: list[tuple[str, str]] = []
        if self.kind == "terms":
            if self.terms is None:
                problems.append(("terms", N_("Required for a proposal of kind terms")))
            for name in ("period", "surplus"):
                if getattr(self, name) is not None:
                    problems.append((name, N_("Only a patronage proposal has this field")))
        else:
            for name in ("period", "surplus"):
                if getattr(self, name) is None:
                    problems.append((name, N_("Required for a patronage proposal")))
            for name in ("terms", "effective_from"):
                if getattr(self, name) is not None:
                    problems.append((name, N_("A patronage proposal changes no term")))
        if problems:
            raise ValidationError.from_exception_data(
                "ProposalCreate",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("proposal_kind", reason),
                        loc=(field,),
                        input=None,
                    )
                    for field, reason in problems
                ],
            )
        return self


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
    reason: str = Field(
        description="approved, quorum_not_met, not_approved, or period_taken (a ratified "
        "dividend whose days another dividend was posted for first: rejected, nothing posted)"
    )


class PatronageLineOut(BaseModel):
    measure: str
    share: str


class PatronageOut(BaseModel):
    """The allocation a patronage proposal would make, shown before the vote."""

    period: dict[str, date] = Field(description="{from, to}: local dates, both included")
    timezone: str
    basis: str = Field(description="engaged_seconds, driver_earnings or trips")
    currency: str
    surplus: str
    reserve_percent: str
    reserve: str = Field(description="Kept as the co-op's indivisible reserve")
    distributable: str = Field(description="surplus - reserve: shared among the members")
    total_measure: str
    members: int = Field(description="Members with patronage in the period: each gets a share")
    tie_rule: str
    lines: list[PatronageLineOut] | None = Field(
        description="Each member's measure and share, largest first, without names or ids; "
        "only for a caller with a member's (driver's) token, null for anyone else: a member "
        "reads their own line at GET /v1/drivers/me/patronage"
    )

    @classmethod
    def of(cls, shown: dict[str, Any], *, with_lines: bool) -> PatronageOut:
        return cls(
            period={
                "from": date.fromisoformat(shown["period"]["from"]),
                "to": date.fromisoformat(shown["period"]["to"]),
            },
            timezone=shown["timezone"],
            basis=shown["basis"],
            currency=shown["currency"],
            surplus=shown["surplus"],
            reserve_percent=shown["reserve_percent"],
            reserve=shown["reserve"],
            distributable=shown["distributable"],
            total_measure=shown["total_measure"],
            members=len(shown["lines"]),
            tie_rule=shown["tie_rule"],
            lines=[
                PatronageLineOut(measure=line["measure"], share=line["share"])
                for line in shown["lines"]
            ]
            if with_lines
            else None,
        )


class ProposalOut(BaseModel):
    id: uuid.UUID
    kind: ProposalKind = Field(description="terms or patronage")
    title: str
    rationale: str
    status: ProposalStatus
    terms: Terms | None = Field(description="null for a patronage proposal")
    terms_sha256: str | None
    base_version: int = Field(description="The version in force when the vote opened")
    effective_from: datetime | None
    voting_closes_at: datetime
    opened_at: datetime
    closed_at: datetime | None
    eligible: int = Field(description="Members on the roll: those active when the vote opened")
    diff: list[ChangeOut]
    impact: ImpactOut | None = Field(description="null for a patronage proposal")
    patronage: PatronageOut | None = Field(description="Only for a patronage proposal")
    tally: TallyOut | None = Field(description="Only once closed; never a running count")
    version: int | None = Field(description="The agreement version it became, once ratified")
    withdrawn_reason: str | None = Field(
        default=None, description="Why the committee withdrew it; null unless withdrawn"
    )

    @classmethod
    def of(cls, proposal: Proposal, diff: list[Change], *, member: bool) -> ProposalOut:
        """`member`: whether the reader is a member, who alone sees a dividend's lines."""
        tally = None
        if proposal.status in (ProposalStatus.ratified, ProposalStatus.rejected):
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
            kind=proposal.kind,
            title=proposal.title,
            rationale=proposal.rationale,
            status=proposal.status,
            terms=proposal.terms if proposal.terms_json is not None else None,
            terms_sha256=proposal.terms_sha256,
            base_version=proposal.base_version,
            effective_from=proposal.effective_from,
            voting_closes_at=proposal.voting_closes_at,
            opened_at=proposal.opened_at,
            closed_at=proposal.closed_at,
            eligible=proposal.eligible,
            diff=[ChangeOut.of(change) for change in diff],
            impact=None if proposal.impact is None else ImpactOut.model_validate(proposal.impact),
            patronage=None
            if proposal.patronage is None
            else PatronageOut.of(proposal.patronage, with_lines=member),
            tally=tally,
            version=proposal.result_version,
            withdrawn_reason=proposal.withdrawn_reason,
        )


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, FreeText(max_chars=2_000)] = Field(
        description="Why the vote is withdrawn: shown with the proposal to everyone"
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
    cast_at: datetime | None = Field(
        default=None,
        description="Always null: a ballot keeps no date (docs/agreement.md, 'Ballot secrecy')",
    )
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
            sealed=ballot.sealed,
        )


class MemberPatronageOut(BaseModel):
    proposal_id: uuid.UUID
    status: str = Field(description="allocated (ratified and posted) or proposed (being voted)")
    period: dict[str, date]
    basis: str
    currency: str
    measure: str = Field(description="Your patronage in the period, under the basis")
    share: str = Field(description="Your share of the dividend")
    at: datetime = Field(description="When it was allocated, or when the vote closes")


class PatronageAllocationOut(BaseModel):
    """A posted dividend's public totals: no member's line."""

    proposal_id: uuid.UUID
    period: dict[str, date]
    basis: str
    currency: str
    surplus: str
    reserve_percent: str
    reserve: str
    distributable: str
    members: int
    allocated_at: datetime

    @classmethod
    def of(cls, row: PatronageAllocation) -> PatronageAllocationOut:
        return cls(
            proposal_id=row.proposal_id,
            period={"from": row.period_from, "to": row.period_to},
            basis=row.basis,
            currency=row.currency,
            surplus=money_str(row.surplus),
            reserve_percent=f"{row.reserve_percent.normalize():f}",
            reserve=money_str(row.reserve),
            distributable=money_str(row.distributable),
            members=row.members,
            allocated_at=row.allocated_at,
        )
