"""The patronage dividend: a proposal kind the committee opens and the members vote like any other.

The proposal carries the allocation it would make, worked out when it opens from each member's
patronage in the period under the basis in force (`patronage.allocate`), so members see exactly
what they vote on; a ratified one is posted to the ledger as shown (`ledger.post`).

Bargaining cannot read trips (dispatch sits above it): the measures come through a
`PatronageSource` the composition root installs as `app.state.patronage_source`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import ledger, patronage
from bargaining.exceptions import InvalidProposal, PatronagePeriodTaken
from bargaining.models import (
    PatronageAllocation,
    PatronageLine,
    Proposal,
    ProposalKind,
    ProposalStatus,
)
from bargaining.service import get_version, in_force, put_to_vote, voting_period_problems
from bargaining.terms import PAY_PERIOD_ANCHOR, PayTerms, money_str
from coop import paging
from coop.errors import Forbidden
from drivers.models import Driver, DriverStatus

# Called with (session, start, end, basis): each driver's patronage over trips that ended in
# [start, end). Installed by the composition root from dispatch's pay.
PatronageSource = Callable[
    [AsyncSession, datetime, datetime, str], Awaitable[dict[uuid.UUID, Decimal]]
]


# A dividend over fewer members than this would publish each one's work almost exactly: the
# same threshold under which the public pay report withholds a period's figures.
MIN_MEMBERS_SHARED = 5


def _starts_period(day: date, pay: PayTerms) -> bool:
    return (day - PAY_PERIOD_ANCHOR).days % pay.period_days == 0


def _whole_periods(period_from: date, period_to: date, pay: PayTerms) -> list[dict[str, str]]:
    """Problems with a period that is not a run of whole pay periods: a shorter span (one day)
    would let anyone read each member's work on that day from the lines."""
    errors = []
    if not _starts_period(period_from, pay):
        errors.append(
            {
                "field": "period.from",
                "reason": f"Must be the first day of a pay period (a Monday; periods are "
                f"{pay.period_days} days): a dividend is shared over whole pay periods",
            }
        )
    if not _starts_period(period_to + timedelta(days=1), pay):
        errors.append(
            {
                "field": "period.to",
                "reason": f"Must be the last day of a pay period (a Sunday; periods are "
                f"{pay.period_days} days): a dividend is shared over whole pay periods",
            }
        )
    return errors


async def open_patronage_proposal(
    *,
    session: AsyncSession,
    proposer: Driver,
    title: str,
    rationale: str,
    period_from: date,
    period_to: date,
    surplus: Decimal,
    voting_closes_at: datetime,
    now: datetime,
    source: PatronageSource,
) -> Proposal:
    """Puts a dividend to the vote with the allocation it would make."""
    if proposer.status is not DriverStatus.active:
        raise Forbidden("Only an active member of the committee may open a vote")
    base = await in_force(session=session, at=now)
    terms = base.terms
    zone = ZoneInfo(terms.pay.timezone)
    today = now.astimezone(zone).date()
    errors = voting_period_problems(
        voting_closes_at=voting_closes_at, now=now, governance=terms.governance
    )
    if period_from > period_to:
        errors.append({"field": "period.from", "reason": "Must not be after period.to"})
    elif (period_to - period_from).days + 1 > terms.patronage.max_period_days:
        errors.append(
            {
                "field": "period.to",
                "reason": f"The period is at most {terms.patronage.max_period_days} days "
                "(patronage.max_period_days)",
            }
        )
    first_day = await _first_pay_day(session, terms.pay)
    if period_from < first_day:
        errors.append(
            {
                "field": "period.from",
                "reason": f"Must not be before {first_day.isoformat()}, the first day of the "
                "co-op's first pay period: there was no work to share before it",
            }
        )
    if period_to >= today:
        errors.append(
            {
                "field": "period.to",
                "reason": f"Must be before today ({today.isoformat()} in {terms.pay.timezone}): "
                "a dividend is shared over work already done",
            }
        )
    errors.extend(_whole_periods(period_from, period_to, terms.pay))
    if errors:
        raise InvalidProposal(
            "; ".join(f"{e['field']}: {e['reason']}" for e in errors), errors=errors
        )
    await _refuse_overlap(session, period_from, period_to)
    start = datetime.combine(period_from, time(0), tzinfo=zone)
    end = datetime.combine(period_to + timedelta(days=1), time(0), tzinfo=zone)
    measures = await source(session, start, end, terms.patronage.basis)
    if 0 < len(measures) < MIN_MEMBERS_SHARED:
        await session.rollback()
        reason = (
            f"{len(measures)} members had patronage in this period; a dividend is shared among "
            f"at least {MIN_MEMBERS_SHARED}, so that no line is one member's work laid bare: "
            "choose a longer period"
        )
        raise InvalidProposal(f"period: {reason}", errors=[{"field": "period", "reason": reason}])
    members = dict(
        (
            await session.execute(
                select(Driver.id, Driver.member_number).where(Driver.id.in_(list(measures)))
            )
        ).all()
    )
    by_number = {members[driver_id]: measure for driver_id, measure in measures.items()}
    allocation = patronage.allocate(
        surplus=surplus, reserve_percent=terms.patronage.reserve_percent, measures=by_number
    )
    driver_of = {number: driver_id for driver_id, number in members.items()}
    shown = {
        "period": {"from": period_from.isoformat(), "to": period_to.isoformat()},
        "timezone": terms.pay.timezone,
        "basis": terms.patronage.basis,
        "currency": terms.currency,
        "surplus": money_str(allocation.surplus),
        "reserve_percent": f"{terms.patronage.reserve_percent.normalize():f}",
        "reserve": money_str(allocation.reserve),
        "distributable": money_str(allocation.distributable),
        "total_measure": f"{allocation.total_measure.normalize():f}",
        "tie_rule": patronage.TIE_RULE,
        "lines": [
            {
                "driver_id": str(driver_of[share.member]),
                "measure": f"{share.measure.normalize():f}",
                "share": money_str(share.share),
            }
            for share in allocation.shares
        ],
    }
    proposal = Proposal(
        id=uuid.uuid4(),
        kind=ProposalKind.patronage,
        title=title,
        rationale=rationale,
        terms_json=None,
        terms_sha256=None,
        patronage=shown,
        base_version=base.version,
        effective_from=None,
        voting_closes_at=voting_closes_at,
        status=ProposalStatus.open,
        proposed_by=proposer.id,
        opened_at=now,
        eligible=0,
        impact=None,
    )
    return await put_to_vote(
        session=session,
        proposal=proposal,
        audit_content={
            "period_from": period_from.isoformat(),
            "period_to": period_to.isoformat(),
            "surplus": allocation.surplus,
            "reserve": allocation.reserve,
            "distributable": allocation.distributable,
            "members": len(allocation.shares),
        },
    )


async def _refuse_overlap(session: AsyncSession, period_from: date, period_to: date) -> None:
    """Days already shared out by a posted dividend are refused. A dividend still being voted on
    takes no days: it could be rejected or withdrawn, and blocking its days would let one
    proposal hold a period hostage; if two overlapping ones are ratified, the second finds its
    days taken at its close (`service.PERIOD_TAKEN`)."""
    allocated = await ledger.allocation_overlapping(
        session=session, period_from=period_from, period_to=period_to
    )
    if allocated is not None:
        refusal = PatronagePeriodTaken(
            f"A dividend for {allocated.period_from.isoformat()} to "
            f"{allocated.period_to.isoformat()} was already allocated "
            f"(proposal {allocated.proposal_id}): a period is shared out once",
            proposal_id=str(allocated.proposal_id),
        )
        await session.rollback()
        raise refusal


async def _first_pay_day(session: AsyncSession, pay: PayTerms) -> date:
    """The first day of the pay period that holds the installation (the founding version's
    writing): the co-op's first pay period, as pay counts them."""
    founding = await get_version(session=session, version=1)
    day = founding.created_at.astimezone(ZoneInfo(pay.timezone)).date()
    return day - timedelta(days=(day - PAY_PERIOD_ANCHOR).days % pay.period_days)


# --- what members and the public read ------------------------------------------------------------


@dataclass(frozen=True)
class MemberLine:
    proposal_id: uuid.UUID
    status: str  # allocated | proposed
    period_from: date
    period_to: date
    basis: str
    currency: str
    measure: Decimal
    share: Decimal
    at: datetime  # allocated_at, or voting_closes_at for a proposal still voted on


async def member_lines(*, session: AsyncSession, driver_id: uuid.UUID) -> list[MemberLine]:
    """The member's own lines: every dividend posted, and those being voted on, newest first."""
    lines = []
    rows = await session.execute(
        select(PatronageAllocation, PatronageLine)
        .join(PatronageLine, PatronageLine.proposal_id == PatronageAllocation.proposal_id)
        .where(PatronageLine.driver_id == driver_id)
    )
    for allocation, line in rows.all():
        lines.append(
            MemberLine(
                proposal_id=allocation.proposal_id,
                status="allocated",
                period_from=allocation.period_from,
                period_to=allocation.period_to,
                basis=allocation.basis,
                currency=allocation.currency,
                measure=line.measure,
                share=line.share,
                at=allocation.allocated_at,
            )
        )
    pending = await session.scalars(
        select(Proposal).where(
            Proposal.kind == ProposalKind.patronage, Proposal.status == ProposalStatus.open
        )
    )
    for proposal in pending:
        shown = proposal.patronage
        assert shown is not None
        for entry in shown["lines"]:
            if entry["driver_id"] == str(driver_id):
                lines.append(
                    MemberLine(
                        proposal_id=proposal.id,
                        status="proposed",
                        period_from=date.fromisoformat(shown["period"]["from"]),
                        period_to=date.fromisoformat(shown["period"]["to"]),
                        basis=shown["basis"],
                        currency=shown["currency"],
                        measure=Decimal(entry["measure"]),
                        share=Decimal(entry["share"]),
                        at=proposal.voting_closes_at,
                    )
                )
    lines.sort(key=member_line_key, reverse=True)
    return lines


def member_line_key(line: MemberLine) -> tuple[date, uuid.UUID]:
    """A member's lines are listed newest period first (then by proposal, for paging)."""
    return (line.period_from, line.proposal_id)


ALLOCATIONS_ORDER = (
    (PatronageAllocation.period_from, True),
    (PatronageAllocation.proposal_id, True),
)


def allocation_key(allocation: PatronageAllocation) -> tuple[date, uuid.UUID]:
    return (allocation.period_from, allocation.proposal_id)


async def allocations(
    *,
    session: AsyncSession,
    limit: int | None = None,
    after: tuple[date, uuid.UUID] | None = None,
) -> list[PatronageAllocation]:
    """Every dividend posted, newest period first: the public totals; at most `limit`, those
    after `after` (a page's cursor)."""
    query = select(PatronageAllocation).order_by(
        *(column.desc() for column, _ in ALLOCATIONS_ORDER)
    )
    if after is not None:
        query = query.where(paging.after_key(ALLOCATIONS_ORDER, after))
    if limit is not None:
        query = query.limit(limit)
    return list(await session.scalars(query))
