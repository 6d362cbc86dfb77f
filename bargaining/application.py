"""The agreement's application layer: what the API's routes and the co-op's pages both do.

Each function takes the caller (the driver a check yielded), the session and typed
collaborators, makes the checks that decide whether the caller may (a committee member, a
member on the roll), and answers a read model (`bargaining.schemas`). The routes
(`bargaining.router`) and the pages (`server.web.pages`) are adapters over these functions, so a
check added here holds on both paths.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import dividend, notices, proposals, service
from bargaining.diff import Change
from bargaining.dividend import PatronageSource
from bargaining.impact import CompletedTripsSource, Impact
from bargaining.models import Proposal, ProposalStatus
from bargaining.schemas import (
    AgreementOut,
    BallotIn,
    BallotOut,
    ChangeOut,
    MemberPatronageOut,
    PatronageAllocationOut,
    ProposalCreate,
    ProposalOut,
)
from bargaining.terms import money_str
from coop import paging
from coop.redis_client import Redis
from drivers.dependencies import get_committee_member
from drivers.models import Driver

T = TypeVar("T")
# A page of a list, and the cursor of the next page (None: this page is the last).
Page = tuple[list[T], str | None]


# --- the agreement's versions ----------------------------------------------------------------


async def versions(*, session: AsyncSession) -> list[AgreementOut]:
    """Every version of the agreement, oldest first; none is ever removed."""
    return [AgreementOut.of(row) for row in await service.list_versions(session=session)]


async def in_force(*, session: AsyncSession, now: datetime) -> AgreementOut:
    """The version in force at `now`."""
    return AgreementOut.of(await service.in_force(session=session, at=now))


async def version(*, session: AsyncSession, number: int) -> AgreementOut:
    return AgreementOut.of(await service.get_version(session=session, version=number))


async def diff(*, session: AsyncSession, a: int, b: int) -> list[ChangeOut]:
    """What changed from version `a` to version `b`, path by path."""
    changes = await service.diff_versions(session=session, a=a, b=b)
    return [ChangeOut.of(change) for change in changes]


# --- proposals ---------------------------------------------------------------------------------


async def _proposal_out(session: AsyncSession, proposal: Proposal, *, member: bool) -> ProposalOut:
    changes = await proposals.proposal_diff(session=session, proposal=proposal)
    return ProposalOut.of(proposal, changes, member=member)


async def open_proposal(
    *,
    driver: Driver,
    body: ProposalCreate,
    session: AsyncSession,
    now: datetime,
    trips_source: CompletedTripsSource,
    patronage_source: PatronageSource,
    redis: Redis | None = None,
) -> ProposalOut:
    """A committee member puts complete new terms, or a patronage dividend, to the vote; with
    `redis`, the members on the roll are pushed that it opened (`bargaining.notices`)."""
    opened = await _open_proposal(
        driver=driver,
        body=body,
        session=session,
        now=now,
        trips_source=trips_source,
        patronage_source=patronage_source,
    )
    if redis is not None:
        await notices.vote_opened(session=session, redis=redis, proposal=opened, now=now)
    return opened


async def _open_proposal(
    *,
    driver: Driver,
    body: ProposalCreate,
    session: AsyncSession,
    now: datetime,
    trips_source: CompletedTripsSource,
    patronage_source: PatronageSource,
) -> ProposalOut:
    member = await get_committee_member(driver)
    if body.kind == "patronage":
        assert body.period is not None and body.surplus is not None
        proposal = await dividend.open_patronage_proposal(
            session=session,
            proposer=member,
            title=body.title,
            rationale=body.rationale,
            period_from=body.period.from_,
            period_to=body.period.to,
            surplus=body.surplus,
            voting_closes_at=body.voting_closes_at,
            now=now,
            source=patronage_source,
        )
        return await _proposal_out(session, proposal, member=True)
    assert body.terms is not None
    proposal = await service.open_proposal(
        session=session,
        proposer=member,
        title=body.title,
        rationale=body.rationale,
        terms=body.terms,
        effective_from=body.effective_from,
        voting_closes_at=body.voting_closes_at,
        now=now,
        trips_source=trips_source,
    )
    return await _proposal_out(session, proposal, member=True)


@dataclass(frozen=True)
class Preview:
    """What opening a proposal would put to the vote: its base, its changes, its impact."""

    base_version: int
    changes: list[Change]
    impact: Impact


async def preview_proposal(
    *,
    driver: Driver,
    body: ProposalCreate,
    session: AsyncSession,
    now: datetime,
    trips_source: CompletedTripsSource,
) -> Preview:
    """A committee member's draft of new terms, checked as opening it would check it, without
    opening it."""
    await get_committee_member(driver)
    assert body.terms is not None  # a proposal of kind terms requires them to validate
    base, changes, impact = await service.preview_proposal(
        session=session,
        terms=body.terms,
        effective_from=body.effective_from,
        voting_closes_at=body.voting_closes_at,
        now=now,
        trips_source=trips_source,
    )
    return Preview(base_version=base.version, changes=changes, impact=impact)


async def list_proposals(
    *,
    session: AsyncSession,
    now: datetime,
    member: bool,
    status: ProposalStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[ProposalOut]:
    """Proposals, newest first; `member`: whether the reader sees a dividend's lines."""
    after = (
        None if cursor is None else paging.decode_cursor(cursor, "proposals", (datetime, uuid.UUID))
    )
    found = await proposals.list_proposals(
        session=session, now=now, status=status, limit=limit + 1, after=after
    )
    page, next_cursor = paging.page_of(found, limit, proposals.proposal_key, "proposals")
    return [await _proposal_out(session, proposal, member=member) for proposal in page], next_cursor


async def read_proposal(
    *, proposal_id: uuid.UUID, session: AsyncSession, now: datetime, member: bool
) -> ProposalOut:
    """A proposal, with its tally once closed (a dividend's lines only for members)."""
    proposal = await proposals.get_proposal(session=session, proposal_id=proposal_id, now=now)
    return await _proposal_out(session, proposal, member=member)


async def close_proposal(
    *, driver: Driver, proposal_id: uuid.UUID, session: AsyncSession, now: datetime
) -> ProposalOut:
    """A committee member closes a vote whose deadline has passed."""
    await get_committee_member(driver)
    proposal = await service.close(session=session, proposal_id=proposal_id, now=now)
    return await _proposal_out(session, proposal, member=True)


async def withdraw_proposal(
    *, driver: Driver, proposal_id: uuid.UUID, reason: str, session: AsyncSession, now: datetime
) -> ProposalOut:
    """A committee member withdraws an open vote, giving its reason."""
    member = await get_committee_member(driver)
    proposal = await service.withdraw(
        session=session, proposal_id=proposal_id, member=member, reason=reason, now=now
    )
    return await _proposal_out(session, proposal, member=True)


# --- ballots: the caller's own, and only theirs ------------------------------------------------


async def cast_ballot(
    *,
    driver: Driver,
    proposal_id: uuid.UUID,
    body: BallotIn,
    session: AsyncSession,
    now: datetime,
    master: bytes,
) -> BallotOut:
    """A member on the vote's roll votes; voting again replaces the earlier ballot."""
    ballot = await service.cast_ballot(
        session=session,
        master=master,
        proposal_id=proposal_id,
        driver_id=driver.id,
        choice=body.choice,
        now=now,
    )
    return BallotOut.of(proposal_id, ballot)


async def own_ballot(
    *, driver: Driver, proposal_id: uuid.UUID, session: AsyncSession, master: bytes
) -> BallotOut:
    """The caller's own ballot: the only ballot anyone can read, and only until the close."""
    ballot = await service.own_ballot(
        session=session, master=master, proposal_id=proposal_id, driver_id=driver.id
    )
    return BallotOut.of(proposal_id, ballot)


# --- the patronage dividend --------------------------------------------------------------------


async def my_patronage(
    *, driver: Driver, session: AsyncSession, limit: int, cursor: str | None
) -> Page[MemberPatronageOut]:
    """The driver's own patronage lines, newest period first."""
    after = None if cursor is None else paging.decode_cursor(cursor, "patronage", (date, uuid.UUID))
    lines = paging.keyed_after(
        await dividend.member_lines(session=session, driver_id=driver.id),
        dividend.member_line_key,
        after,
        descending=True,
    )
    lines, next_cursor = paging.page_of(
        lines[: limit + 1], limit, dividend.member_line_key, "patronage"
    )
    shown = [
        MemberPatronageOut(
            proposal_id=line.proposal_id,
            status=line.status,
            period={"from": line.period_from, "to": line.period_to},
            basis=line.basis,
            currency=line.currency,
            measure=f"{line.measure.normalize():f}",
            share=money_str(line.share),
            at=line.at,
        )
        for line in lines
    ]
    return shown, next_cursor


async def patronage_totals(
    *, session: AsyncSession, limit: int, cursor: str | None
) -> Page[PatronageAllocationOut]:
    """Every dividend posted, newest period first: the public's totals, no member's line."""
    after = (
        None
        if cursor is None
        else paging.decode_cursor(cursor, "patronage-allocations", (date, uuid.UUID))
    )
    rows = await dividend.allocations(session=session, limit=limit + 1, after=after)
    page, next_cursor = paging.page_of(
        rows, limit, dividend.allocation_key, "patronage-allocations"
    )
    return [PatronageAllocationOut.of(row) for row in page], next_cursor
