"""Races against the real database: ballots and closes, closes and closes, first starts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bargaining import service
from bargaining.exceptions import VotingClosed
from bargaining.models import AgreementVersion, BallotChoice, Proposal, SealedBallot
from coop.audit import AuditEntry, verify
from tests.bargaining.conftest import Clock, open_proposal, proposal_body
from tests.builders import Account, make_driver

CHOICES = [BallotChoice.yes, BallotChoice.no, BallotChoice.abstain]
MASTER = b""


@pytest.fixture(autouse=True)
def _ballot_master(app: FastAPI) -> None:
    """The service's ballot master key, for the ballots these tests cast without HTTP."""
    global MASTER
    MASTER = app.state.ballot_master_key


async def _ballot(
    sessionmaker: async_sessionmaker[AsyncSession],
    proposal_id: uuid.UUID,
    driver_id: uuid.UUID,
    choice: BallotChoice,
    now: datetime,
) -> BallotChoice | None:
    """Casts through its own session; answers the choice if accepted, None if refused."""
    async with sessionmaker() as session:
        try:
            await service.cast_ballot(
                session=session,
                master=MASTER,
                proposal_id=proposal_id,
                driver_id=driver_id,
                choice=choice,
                now=now,
            )
        except VotingClosed:
            return None
        return choice


async def _close_due(sessionmaker: async_sessionmaker[AsyncSession], now: datetime) -> int:
    async with sessionmaker() as session:
        return len(await service.close_due(session=session, now=now))


async def _count(session: AsyncSession, model: type[object], *where: ColumnElement[bool]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.mark.parametrize("close_position", [0, 6, 12])
async def test_a_ballot_racing_the_close_is_counted_or_refused_never_lost(
    client: AsyncClient,
    admin_headers: dict[str, str],
    committee: Account,
    clock: Clock,
    sessionmaker: async_sessionmaker[AsyncSession],
    close_position: int,
) -> None:
    voters = [await make_driver(client, admin_headers, name=f"V{i}") for i in range(12)]
    proposal = await open_proposal(client, committee, proposal_body(clock, closes_in_s=60))
    pid = uuid.UUID(proposal["id"])
    before_close = clock.now + timedelta(seconds=59)
    deadline = clock.now + timedelta(seconds=60)

    calls: list[Coroutine[Any, Any, BallotChoice | int | None]] = [
        _ballot(sessionmaker, pid, voter.id, CHOICES[i % 3], before_close)
        for i, voter in enumerate(voters)
    ]
    calls.insert(close_position, _close_due(sessionmaker, deadline))
    results = await asyncio.gather(*calls)
    closes = results.pop(close_position)
    accepted = [choice for choice in results if isinstance(choice, BallotChoice)]
    assert len(accepted) + results.count(None) == len(voters)

    assert closes == 1
    async with sessionmaker() as session:
        closed = await session.get(Proposal, pid)
        assert closed is not None and closed.status.value != "open"
        assert (closed.yes, closed.no, closed.abstain) == (
            accepted.count(BallotChoice.yes),
            accepted.count(BallotChoice.no),
            accepted.count(BallotChoice.abstain),
        )
        # What is stored agrees with what was counted: nothing arrived after the count.
        cast = await _count(session, SealedBallot, SealedBallot.proposal_id == pid)
        assert cast == len(accepted)


async def test_one_member_voting_many_times_at_once_has_one_ballot(
    client: AsyncClient,
    committee: Account,
    clock: Clock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    proposal = await open_proposal(client, committee, proposal_body(clock, closes_in_s=60))
    pid = uuid.UUID(proposal["id"])
    now = clock.now + timedelta(seconds=1)
    await asyncio.gather(
        *(_ballot(sessionmaker, pid, committee.id, CHOICES[i % 3], now) for i in range(9))
    )
    await _close_due(sessionmaker, clock.now + timedelta(seconds=60))
    async with sessionmaker() as session:
        closed = await session.get(Proposal, pid)
        assert closed is not None
        assert (closed.yes or 0) + (closed.no or 0) + (closed.abstain or 0) == 1
        assert await _count(session, SealedBallot, SealedBallot.proposal_id == pid) == 1


async def test_concurrent_closes_close_once(
    client: AsyncClient,
    committee: Account,
    clock: Clock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    proposal = await open_proposal(client, committee, proposal_body(clock, closes_in_s=60))
    pid = uuid.UUID(proposal["id"])
    assert await _ballot(sessionmaker, pid, committee.id, BallotChoice.yes, clock.now) is not None
    deadline = clock.now + timedelta(seconds=60)

    async def committee_close() -> int:
        async with sessionmaker() as session:
            await service.close(session=session, proposal_id=pid, now=deadline)
            return 0

    results = await asyncio.gather(
        *(_close_due(sessionmaker, deadline) for _ in range(4)), committee_close()
    )
    assert sum(results) <= 1
    async with sessionmaker() as session:
        closed = await session.get(Proposal, pid)
        assert closed is not None and closed.result_version == 2
        assert await _count(session, AgreementVersion) == 2
        assert await _count(session, AuditEntry, AuditEntry.kind == "proposal.closed") == 1
        assert (await verify(session=session)).ok


async def test_two_ratifications_at_once_get_two_versions(
    client: AsyncClient,
    committee: Account,
    clock: Clock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ids = []
    for per_km in ("1.10", "1.20"):
        body = proposal_body(clock, closes_in_s=60, changes={"fares.standard.per_km": per_km})
        ids.append(uuid.UUID((await open_proposal(client, committee, body))["id"]))
    for pid in ids:
        await _ballot(sessionmaker, pid, committee.id, BallotChoice.yes, clock.now)
    deadline = clock.now + timedelta(seconds=60)

    async def close(pid: uuid.UUID) -> int | None:
        async with sessionmaker() as session:
            return (
                await service.close(session=session, proposal_id=pid, now=deadline)
            ).result_version

    versions = await asyncio.gather(*(close(pid) for pid in ids))
    assert sorted(v or 0 for v in versions) == [2, 3]
    async with sessionmaker() as session:
        assert (await verify(session=session)).ok


async def test_concurrent_first_starts_install_the_founding_agreement_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async def install() -> None:
        async with sessionmaker() as session:
            await service.install_founding(session=session)

    await asyncio.gather(*(install() for _ in range(5)))
    async with sessionmaker() as session:
        assert await _count(session, AgreementVersion) == 1
        assert await _count(session, AuditEntry) == 1
