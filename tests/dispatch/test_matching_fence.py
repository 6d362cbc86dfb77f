"""The leader's fence: taking the lead raises the region's epoch, and a leader's batch writes its
offers only under the epoch it took the lead with, so a matcher that lost the lead without
knowing it (a frozen or cut-off host back) writes nothing and stops leading."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from dispatch.matching.leadership import (
    RENEW_EVERY_S,
    LostLeadership,
    fence,
    raise_epoch,
    region_lock_key,
)
from dispatch.matching.matcher import Matcher
from dispatch.matching.models import LeaderEpoch
from dispatch.trips.models import Offer
from tests.builders import make_driver, make_rider, north, place_driver, request_trip
from tests.polling import until


def _matcher(app: FastAPI) -> Matcher:
    return Matcher(
        engine=app.state.engine,
        sessionmaker=app.state.sessionmaker,
        redis=app.state.redis,
        settings=app.state.settings,
    )


async def _epoch(app: FastAPI) -> int | None:
    async with app.state.sessionmaker() as session:
        region = app.state.settings.matcher_region
        found: int | None = await session.scalar(
            select(LeaderEpoch.epoch).where(LeaderEpoch.region == region)
        )
        return found


async def test_each_lead_raises_the_epoch_and_a_stale_leader_writes_nothing(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    leader = _matcher(app)
    task = asyncio.create_task(leader.run())
    try:
        await until(lambda: leader.leading)
        first = await _epoch(app)
        assert first is not None and leader.epoch == first
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert leader.epoch is None and not leader.leading

    # Another worker took the lead meanwhile (its raise), while this one still believes it
    # leads with the old epoch: its batch finds the epoch moved and offers nothing.
    stale = _matcher(app)
    stale.epoch = first
    async with app.state.sessionmaker() as session:
        region = app.state.settings.matcher_region
        await session.execute(
            update(LeaderEpoch).where(LeaderEpoch.region == region).values(epoch=first + 1)
        )
        await session.commit()
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    await request_trip(client, rider)
    await place_driver(app, driver.id, north(200))
    with pytest.raises(LostLeadership):
        await stale.run_batch()
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Offer)) == 0
    # The leader in force (its epoch) offers it.
    current = _matcher(app)
    current.epoch = first + 1
    report = await current.run_batch()
    assert [offer.driver_id for offer in report.offers] == [driver.id]


async def test_the_fence_holds_the_epoch_until_the_batch_commits(app: FastAPI) -> None:
    region = app.state.settings.matcher_region
    async with app.state.engine.connect() as connection:
        epoch = await raise_epoch(connection, region)
    async with app.state.sessionmaker() as writing, app.state.sessionmaker() as taking:
        await fence(writing, region, epoch)  # a batch about to write, under its epoch
        raised = asyncio.create_task(
            taking.execute(
                update(LeaderEpoch).where(LeaderEpoch.region == region).values(epoch=epoch + 1)
            )
        )
        await asyncio.sleep(0.2)
        assert not raised.done()  # the new leader's raise waits for the batch
        await writing.commit()
        await asyncio.wait_for(raised, timeout=5)
        await taking.commit()
    assert await _epoch(app) == epoch + 1


async def test_a_leader_that_stops_renewing_its_lease_is_taken_over(app: FastAPI) -> None:
    """A leader whose host froze keeps its PostgreSQL session, and so the advisory lock, for a
    minute: its lease lapses instead, and the next worker to ask ends that session and leads."""
    region = app.state.settings.matcher_region
    key = region_lock_key(region)
    async with app.state.engine.connect() as stuck:
        # The stuck leader: it holds the lock, and took the lead, then went silent.
        assert await stuck.scalar(select(func.pg_try_advisory_lock(key)))
        await raise_epoch(stuck, region)
        matcher = _matcher(app)
        task = asyncio.create_task(matcher.run())
        try:
            # Renewed a moment ago: the lead is not taken.
            await until(lambda: matcher.leadership_tries >= 2, timeout_s=10)
            assert not matcher.leading and matcher.lock.takeovers == 0
            # Silent past the lease.
            async with app.state.sessionmaker() as session:
                await session.execute(
                    update(LeaderEpoch)
                    .where(LeaderEpoch.region == region)
                    .values(renewed_at=func.now() - text("interval '1 minute'"))
                )
                await session.commit()
            await until(lambda: matcher.leading, timeout_s=15)
            assert matcher.lock.takeovers == 1
            assert matcher.epoch == await _epoch(app)
            # The stuck leader's session is gone: it cannot write anything any more.
            with pytest.raises(DBAPIError):
                await stuck.execute(select(1))
            # The new leader renews its lease as it works.
            before = await _renewed_at(app)
            await until(lambda: matcher.batches >= 3, timeout_s=15)
            await asyncio.sleep(RENEW_EVERY_S + 0.5)
            assert await _renewed_at(app) > before
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _renewed_at(app: FastAPI) -> datetime:
    async with app.state.sessionmaker() as session:
        found: datetime | None = await session.scalar(
            select(LeaderEpoch.renewed_at).where(
                LeaderEpoch.region == app.state.settings.matcher_region
            )
        )
        assert found is not None
        return found
