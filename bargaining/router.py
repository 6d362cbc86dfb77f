"""HTTP routes of the collective agreement: versions, proposals, ballots and closes (thin)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import dividend, service
from bargaining.dependencies import BallotMaster, MemberReader, Now, PatronageSrc, TripsSource
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
    WithdrawIn,
)
from bargaining.terms import money_str
from coop import paging
from coop.dependencies import SessionDep
from drivers.dependencies import BallotDriver, CommitteeMember, CurrentDriver

router = APIRouter(tags=["bargaining"])

VersionNumber = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.get("/v1/agreements", response_model=list[AgreementOut])
async def list_agreements(session: SessionDep) -> list[AgreementOut]:
    """Every version of the agreement, oldest first; none is ever removed."""
    return [AgreementOut.of(row) for row in await service.list_versions(session=session)]


@router.get("/v1/agreements/current", response_model=AgreementOut)
async def current_agreement(session: SessionDep, now: Now) -> AgreementOut:
    """The version in force now."""
    return AgreementOut.of(await service.in_force(session=session, at=now))


@router.get("/v1/agreements/{version}", response_model=AgreementOut)
async def read_agreement(version: VersionNumber, session: SessionDep) -> AgreementOut:
    return AgreementOut.of(await service.get_version(session=session, version=version))


@router.get("/v1/agreements/{a}/diff/{b}", response_model=list[ChangeOut])
async def diff_agreements(
    a: VersionNumber, b: VersionNumber, session: SessionDep
) -> list[ChangeOut]:
    """What changed from version `a` to version `b`, path by path."""
    changes = await service.diff_versions(session=session, a=a, b=b)
    return [ChangeOut.of(change) for change in changes]


async def _proposal_out(session: AsyncSession, proposal: Proposal, *, member: bool) -> ProposalOut:
    diff = await service.proposal_diff(session=session, proposal=proposal)
    return ProposalOut.of(proposal, diff, member=member)


@router.post("/v1/proposals", status_code=201, response_model=ProposalOut)
async def open_proposal(
    body: ProposalCreate,
    member: CommitteeMember,
    session: SessionDep,
    now: Now,
    trips_source: TripsSource,
    patronage_source: PatronageSrc,
) -> ProposalOut:
    """The committee puts complete new terms, or a patronage dividend (`kind: "patronage"`,
    `period: {from, to}`, `surplus`), to the members' vote."""
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


@router.get("/v1/proposals", response_model=list[ProposalOut])
async def list_proposals(
    request: Request,
    response: Response,
    session: SessionDep,
    now: Now,
    member: MemberReader,
    status: Annotated[ProposalStatus | None, Query()] = None,
    limit: paging.LimitQuery = paging.DEFAULT_LIMIT,
    cursor: paging.CursorQuery = None,
) -> list[ProposalOut]:
    """Every proposal, newest first; `?status=open` for the votes running now; paged."""
    after = (
        None if cursor is None else paging.decode_cursor(cursor, "proposals", (datetime, uuid.UUID))
    )
    proposals = await service.list_proposals(
        session=session,
        now=now,
        status=status,
        limit=limit + 1,
        after=after,
    )
    page, next_cursor = paging.page_of(proposals, limit, service.proposal_key, "proposals")
    paging.set_next(request, response, next_cursor)
    return [await _proposal_out(session, proposal, member=member) for proposal in page]


@router.get("/v1/proposals/{proposal_id}", response_model=ProposalOut)
async def read_proposal(
    proposal_id: uuid.UUID, session: SessionDep, now: Now, member: MemberReader
) -> ProposalOut:
    """A proposal, with its tally once closed (a dividend's lines only for members)."""
    proposal = await service.get_proposal(session=session, proposal_id=proposal_id, now=now)
    return await _proposal_out(session, proposal, member=member)


@router.post("/v1/proposals/{proposal_id}/ballot", response_model=BallotOut)
async def cast_ballot(
    proposal_id: uuid.UUID,
    body: BallotIn,
    driver: BallotDriver,
    session: SessionDep,
    now: Now,
    master: BallotMaster,
) -> BallotOut:
    """An active member votes; voting again replaces the earlier ballot until the close."""
    ballot = await service.cast_ballot(
        session=session,
        master=master,
        proposal_id=proposal_id,
        driver_id=driver.id,
        choice=body.choice,
        now=now,
    )
    return BallotOut.of(proposal_id, ballot)


@router.get("/v1/proposals/{proposal_id}/ballot", response_model=BallotOut)
async def read_own_ballot(
    proposal_id: uuid.UUID, driver: BallotDriver, session: SessionDep, master: BallotMaster
) -> BallotOut:
    """The caller's own ballot: the only ballot anyone can read, and only until the close."""
    ballot = await service.own_ballot(
        session=session, master=master, proposal_id=proposal_id, driver_id=driver.id
    )
    return BallotOut.of(proposal_id, ballot)


@router.post("/v1/proposals/{proposal_id}/close", response_model=ProposalOut)
async def close_proposal(
    proposal_id: uuid.UUID, member: CommitteeMember, session: SessionDep, now: Now
) -> ProposalOut:
    """The committee closes a vote whose deadline has passed (it also closes by itself)."""
    proposal = await service.close(session=session, proposal_id=proposal_id, now=now)
    return await _proposal_out(session, proposal, member=True)


@router.post("/v1/proposals/{proposal_id}/withdraw", response_model=ProposalOut)
async def withdraw_proposal(
    proposal_id: uuid.UUID, body: WithdrawIn, member: CommitteeMember, session: SessionDep, now: Now
) -> ProposalOut:
    """The committee withdraws an open vote, giving its reason: nothing is counted or posted."""
    proposal = await service.withdraw(
        session=session, proposal_id=proposal_id, member=member, reason=body.reason, now=now
    )
    return await _proposal_out(session, proposal, member=True)


@router.get("/v1/drivers/me/patronage", response_model=list[MemberPatronageOut])
async def my_patronage(
    request: Request,
    response: Response,
    driver: CurrentDriver,
    session: SessionDep,
    limit: paging.LimitQuery = paging.DEFAULT_LIMIT,
    cursor: paging.CursorQuery = None,
) -> list[MemberPatronageOut]:
    """The caller's own patronage lines: dividends allocated to them, and those being voted on,
    newest period first; paged."""
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
    paging.set_next(request, response, next_cursor)
    return [
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


@router.get("/v1/transparency/patronage", response_model=list[PatronageAllocationOut])
async def patronage_totals(
    request: Request,
    response: Response,
    session: SessionDep,
    limit: paging.LimitQuery = paging.DEFAULT_LIMIT,
    cursor: paging.CursorQuery = None,
) -> list[PatronageAllocationOut]:
    """Every dividend posted, newest period first: surplus, reserve, distributable, members;
    paged."""
    after = (
        None
        if cursor is None
        else paging.decode_cursor(cursor, "patronage-allocations", (date, uuid.UUID))
    )
    rows = await dividend.allocations(session=session, limit=limit + 1, after=after)
    page, next_cursor = paging.page_of(
        rows, limit, dividend.allocation_key, "patronage-allocations"
    )
    paging.set_next(request, response, next_cursor)
    return [PatronageAllocationOut.of(row) for row in page]
