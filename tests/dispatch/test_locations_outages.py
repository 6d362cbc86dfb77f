"""The ingest's catch-alls tell an outage from a bug: PostgreSQL or Redis away (a real relay or
server stopped) is said once per outage and counted, the reports kept; anything else is a bug,
logged with its traceback every time (or raised), never called "unreachable"."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from coop.db import create_engine, utcnow
from coop.redis_client import create_redis
from coop.settings import Settings
from dispatch.locations import flush as flush_writes
from dispatch.locations import service as locations_service
from dispatch.locations.ingest import LocationIngest
from tests.builders import DOWNTOWN, PLATEAU, assigned_trip, make_driver, make_rider
from tests.polling import until
from tests.servers import SocketProxy, ThrowawayRedis, postgres_relay


def _report(ingest: LocationIngest, driver_id: uuid.UUID, at: dict[str, float]) -> None:
    ingest.report(
        driver_id,
        lat=at["lat"],
        lon=at["lon"],
        heading_deg=None,
        speed_mps=None,
        received_at=utcnow(),
    )


@contextlib.asynccontextmanager
async def _proxied_ingest(
    settings: Settings, app: FastAPI, folder: Path
) -> AsyncIterator[tuple[LocationIngest, SocketProxy]]:
    """An ingest whose flushes reach PostgreSQL through a relay the test can stop."""
    async with postgres_relay(settings, folder) as (proxy, database_url):
        engine = create_engine(database_url, pool_size=1, max_overflow=0)
        ingest = LocationIngest(
            engine=engine, redis=app.state.redis, grace_s=settings.driver_grace_s
        )
        try:
            yield ingest, proxy
        finally:
            await ingest.close()
            await engine.dispose()


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "coop.locations" and r.levelno == level]


async def _a_bug(*args: Any, **kwargs: Any) -> Any:
    raise ValueError("a bug in the flush")


async def test_the_flush_loop_says_a_database_outage_once_and_a_bug_every_time(
    settings: Settings,
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    short_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    driver = await make_driver(client, admin_headers)
    caplog.set_level(logging.INFO, logger="coop.locations")
    async with _proxied_ingest(settings, app, short_tmp) as (ingest, proxy):
        loop = asyncio.create_task(ingest.run(0.02))
        try:
            await proxy.stop()
            _report(ingest, driver.id, DOWNTOWN)
            await until(lambda: ingest.flush_outages.failures >= 3, what="three failed flushes")
            warned = _records(caplog, logging.WARNING)
            assert len(warned) == 1, [r.getMessage() for r in warned]
            assert (
                "PostgreSQL" in warned[0].getMessage() and "unreachable" in warned[0].getMessage()
            )
            assert _records(caplog, logging.ERROR) == []
            assert ingest.flush_outages.outages == 1 and ingest.pending == 1  # kept

            await proxy.start()
            await until(lambda: ingest.pending == 0, what="the flush after the outage")
            await until(lambda: ingest.flush_outages.down is None, what="the end of the outage")
            assert any("answers again" in r.getMessage() for r in _records(caplog, logging.INFO))

            # A bug is no outage: its traceback at every flush it breaks, never "unreachable".
            monkeypatch.setattr(flush_writes, "write", _a_bug)
            _report(ingest, driver.id, PLATEAU)
            await until(lambda: ingest.flush_outages.bugs >= 2, what="two flushes broken by a bug")
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
    bugs = _records(caplog, logging.ERROR)
    assert len(bugs) == ingest.flush_outages.bugs
    for record in bugs:
        assert record.exc_info is not None and record.exc_info[0] is ValueError
        assert "unreachable" not in record.getMessage()
    assert len(_records(caplog, logging.WARNING)) == 1  # still the one outage
    presence = await locations_service.presence(session=session, driver_id=driver.id)
    assert presence is not None and presence.position is not None
    assert presence.position.lat == DOWNTOWN["lat"]


async def test_the_last_flush_says_what_an_outage_lost_and_logs_a_bug_with_its_traceback(
    settings: Settings,
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    short_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    driver = await make_driver(client, admin_headers)
    caplog.set_level(logging.INFO, logger="coop.locations")
    async with _proxied_ingest(settings, app, short_tmp) as (ingest, proxy):
        monkeypatch.setattr(flush_writes, "write", _a_bug)
        _report(ingest, driver.id, DOWNTOWN)
        await ingest.drain()  # not raised: the shutdown goes on
        [bug] = _records(caplog, logging.ERROR)
        assert bug.exc_info is not None and bug.exc_info[0] is ValueError
        assert _records(caplog, logging.WARNING) == []
        monkeypatch.undo()

        await proxy.stop()
        await ingest.drain()
        said = [r.getMessage() for r in _records(caplog, logging.WARNING)]
        assert len(said) == 2, said
        assert "unreachable" in said[0] and "1 driver positions were not written" in said[1]
        assert len(_records(caplog, logging.ERROR)) == 1  # only the bug


async def test_riders_frames_during_a_redis_outage_are_said_once_and_a_bug_is_raised(
    settings: Settings,
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    short_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    driver = await make_driver(client, admin_headers)
    await assigned_trip(app, client, await make_rider(client), driver)
    caplog.set_level(logging.INFO, logger="coop.locations")
    server = ThrowawayRedis(short_tmp)
    await server.start()
    redis = create_redis(server.url)
    engine = create_engine(settings.database_url, pool_size=1, max_overflow=0)
    ingest = LocationIngest(engine=engine, redis=redis, grace_s=settings.driver_grace_s)
    try:
        _report(ingest, driver.id, DOWNTOWN)
        assert (await ingest.flush()).riders_told == 1
        server.stop()
        for at in (PLATEAU, DOWNTOWN):
            _report(ingest, driver.id, at)
            result = await ingest.flush()  # the positions are stored all the same
            assert result.drivers == 1 and result.riders_told == 0
        said = [r.getMessage() for r in _records(caplog, logging.WARNING)]
        assert len(said) == 1 and "Redis" in said[0] and "unreachable" in said[0], said
        assert ingest.publish_outages.failures == 2 and ingest.publish_outages.outages == 1

        await server.start()

        def a_bug(rider_id: uuid.UUID) -> str:
            raise ValueError("a bug in the frame")

        monkeypatch.setattr(flush_writes, "rider_channel", a_bug)
        _report(ingest, driver.id, PLATEAU)
        with pytest.raises(ValueError, match="a bug in the frame"):
            await ingest.flush()
        assert ingest.pending == 0  # written before the frames failed
        assert len(_records(caplog, logging.WARNING)) == 1
    finally:
        await ingest.close()
        await engine.dispose()
        await redis.aclose()
        server.stop()
