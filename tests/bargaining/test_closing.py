"""Votes close by themselves at their deadline, from stored state: a restart skips nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bargaining import lifecycle, service
from bargaining.models import AgreementVersion, Proposal, ProposalStatus
from coop.audit import AuditEntry
from coop.db import utcnow
from coop.settings import Settings
from server.app import create_app
from tests.bargaining.conftest import Clock, proposal_body
from tests.builders import make_driver


async def _closed_entries(session: AsyncSession) -> int:
    count = await session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.kind == "proposal.closed")
    )
    return int(count or 0)


async def test_a_vote_closes_at_its_deadline_across_a_restart(
    settings: Settings, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    clock = Clock(utcnow())
    first = create_app(settings)
    first.state.clock = clock
    async with (
        LifespanManager(first),
        AsyncClient(transport=ASGITransport(app=first), base_url="http://test") as client,
    ):
        chair = await make_driver(client, admin_headers, committee=True)
        members = [await make_driver(client, admin_headers) for _ in range(3)]
        body = proposal_body(clock, closes_in_s=600)
        created = await client.post("/v1/proposals", json=body, headers=chair.headers)
        assert created.status_code == 201
        pid = created.json()["id"]
        for member, choice in zip(members, ["yes", "yes", "no"], strict=True):
            cast = await client.post(
                f"/v1/proposals/{pid}/ballot", json={"choice": choice}, headers=member.headers
            )
            assert cast.status_code == 200
    # The service is down when the deadline passes; it comes back an hour later.
    clock.advance(hours=1)
    second = create_app(settings)
    second.state.clock = clock
    async with (
        LifespanManager(second),
        AsyncClient(transport=ASGITransport(app=second), base_url="http://test") as client,
    ):
        read = (await client.get(f"/v1/proposals/{pid}")).json()
        assert read["status"] == "ratified"
        assert read["tally"]["yes"] == 2 and read["tally"]["eligible"] == 4
        assert read["closed_at"] == clock.now.isoformat().replace("+00:00", "Z")
        # Terms never reach back in time: in force from the close, not the missed deadline.
        current = (await client.get("/v1/agreements/current")).json()
        assert current["version"] == 2
        assert current["effective_from"] == read["closed_at"]
    # And again: a later start, a sweep, a read - nothing closes twice.
    clock.advance(hours=1)
    assert await service.close_due(session=session, now=clock.now) == []
    third = create_app(settings)
    third.state.clock = clock
    async with (
        LifespanManager(third),
        AsyncClient(transport=ASGITransport(app=third), base_url="http://test") as client,
    ):
        again = (await client.get(f"/v1/proposals/{pid}")).json()
        assert again == read
    assert await session.scalar(select(func.count()).select_from(AgreementVersion)) == 2
    assert await _closed_entries(session) == 1


async def test_close_due_closes_only_what_is_due(
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    clock: Clock,
) -> None:
    chair = await make_driver(client, admin_headers, committee=True)
    ids = []
    for closes_in_s, per_km in [(60, "1.10"), (120, "1.20")]:
        body = proposal_body(
            clock, closes_in_s=closes_in_s, changes={"fares.standard.per_km": per_km}
        )
        ids.append(
            (await client.post("/v1/proposals", json=body, headers=chair.headers)).json()["id"]
        )
    assert await service.close_due(session=session, now=clock.now + timedelta(seconds=59)) == []
    closed = await service.close_due(session=session, now=clock.now + timedelta(seconds=60))
    assert [str(p.id) for p in closed] == [ids[0]]
    assert await service.close_due(session=session, now=clock.now + timedelta(seconds=60)) == []
    later = await service.close_due(session=session, now=clock.now + timedelta(days=1))
    assert [str(p.id) for p in later] == [ids[1]]
    assert await _closed_entries(session) == 2


async def test_the_background_closer_closes_due_votes_on_its_own(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    chair = await make_driver(client, admin_headers, committee=True)
    body = proposal_body(Clock(utcnow()), closes_in_s=3600)
    pid = uuid.UUID(
        (await client.post("/v1/proposals", json=body, headers=chair.headers)).json()["id"]
    )
    async with sessionmaker() as session:
        # The deadline passes while nobody reads the proposal.
        await session.execute(
            update(Proposal)
            .where(Proposal.id == pid)
            .values(voting_closes_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()

    async with lifecycle.running(sessionmaker, background_tasks=True, interval_s=0.05):
        status: ProposalStatus | None = ProposalStatus.open
        for _ in range(400):  # generous: a slow machine only waits longer
            async with sessionmaker() as session:
                status = await session.scalar(select(Proposal.status).where(Proposal.id == pid))
            if status is not ProposalStatus.open:
                break
            await asyncio.sleep(0.05)
    assert status is ProposalStatus.rejected  # nobody voted: no quorum
