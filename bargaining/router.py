"""HTTP routes of the collective agreement: versions, proposals, ballots and closes.

Adapters: each route reads its inputs and calls `bargaining.application`, which the co-op's
pages call too."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from bargaining import application
from bargaining.dependencies import BallotMaster, MemberReader, Now, PatronageSrc, TripsSource
from bargaining.models import ProposalStatus
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
from coop import paging
from coop.dependencies import RedisDep, SessionDep
from drivers.dependencies import BallotDriver, CommitteeMember, CurrentDriver

router = APIRouter(tags=["bargaining"])

VersionNumber = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.get("/v1/agreements", response_model=list[AgreementOut])
async def list_agreements(session: SessionDep) -> list[AgreementOut]:
    """Every version of the agreement, oldest first; none is ever removed."""
    return await application.versions(session=session)


@router.get("/v1/agreements/current", response_model=AgreementOut)
async def current_agreement(session: SessionDep, now: Now) -> AgreementOut:
    """The version in force now."""
    return await application.in_force(session=session, now=now)


@router.get("/v1/agreements/{version}", response_model=AgreementOut)
async def read_agreement(version: VersionNumber, session: SessionDep) -> AgreementOut:
    return await application.version(session=session, number=version)


@router.get("/v1/agreements/{a}/diff/{b}", response_model=list[ChangeOut])
async def diff_agreements(
    a: VersionNumber, b: VersionNumber, session: SessionDep
) -> list[ChangeOut]:
    """What changed from version `a` to version `b`, path by path."""
    return await application.diff(session=session, a=a, b=b)


@router.post("/v1/proposals", status_code=201, response_model=ProposalOut)
async def open_proposal(
    body: ProposalCreate,
    member: CommitteeMember,
    session: SessionDep,
    now: Now,
    trips_source: TripsSource,
    patronage_source: PatronageSrc,
    redis: RedisDep,
) -> ProposalOut:
    """The committee puts complete new terms, or a patronage dividend (`kind: "patronage"`,
    `period: {from, to}`, `surplus`), to the members' vote; the members are pushed that it
    opened."""
    return await application.open_proposal(
        driver=member,
        body=body,
        session=session,
        now=now,
        trips_source=trips_source,
        patronage_source=patronage_source,
        redis=redis,
    )


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
    page, next_cursor = await application.list_proposals(
        session=session, now=now, member=member, status=status, limit=limit, cursor=cursor
    )
    paging.set_next(request, response, next_cursor)
    return page


@router.get("/v1/proposals/{proposal_id}", response_model=ProposalOut)
async def read_proposal(
    proposal_id: uuid.UUID, session: SessionDep, now: Now, member: MemberReader
) -> ProposalOut:
    """A proposal, with its tally once closed (a dividend's lines only for members)."""
    return await application.read_proposal(
        proposal_id=proposal_id, session=session, now=now, member=member
    )


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
    return await application.cast_ballot(
        driver=driver, proposal_id=proposal_id, body=body, session=session, now=now, master=master
    )


@router.get("/v1/proposals/{proposal_id}/ballot", response_model=BallotOut)
async def read_own_ballot(
    proposal_id: uuid.UUID, driver: BallotDriver, session: SessionDep, master: BallotMaster
) -> BallotOut:
    """The caller's own ballot: the only ballot anyone can read, and only until the close."""
    return await application.own_ballot(
        driver=driver, proposal_id=proposal_id, session=session, master=master
    )


@router.post("/v1/proposals/{proposal_id}/close", response_model=ProposalOut)
async def close_proposal(
    proposal_id: uuid.UUID, member: CommitteeMember, session: SessionDep, now: Now
) -> ProposalOut:
    """The committee closes a vote whose deadline has passed (it also closes by itself)."""
    return await application.close_proposal(
        driver=member, proposal_id=proposal_id, session=session, now=now
    )


@router.post("/v1/proposals/{proposal_id}/withdraw", response_model=ProposalOut)
async def withdraw_proposal(
    proposal_id: uuid.UUID, body: WithdrawIn, member: CommitteeMember, session: SessionDep, now: Now
) -> ProposalOut:
    """The committee withdraws an open vote, giving its reason: nothing is counted or posted."""
    return await application.withdraw_proposal(
        driver=member, proposal_id=proposal_id, reason=body.reason, session=session, now=now
    )


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
    page, next_cursor = await application.my_patronage(
        driver=driver, session=session, limit=limit, cursor=cursor
    )
    paging.set_next(request, response, next_cursor)
    return page


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
    page, next_cursor = await application.patronage_totals(
        session=session, limit=limit, cursor=cursor
    )
    paging.set_next(request, response, next_cursor)
    return page
