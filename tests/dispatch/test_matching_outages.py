"""The matcher's catch-alls tell an outage from a bug: PostgreSQL away (a real relay stopped) is
said once per outage and counted, and the loop goes on; anything else is a bug, logged with its
traceback every time, never called "unreachable"."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from coop.db import create_engine, create_sessionmaker
from coop.outages import OutageLog
from coop.settings import Settings
from dispatch.matching import leadership, travelstore
from dispatch.matching.leadership import Held, RegionLock
from dispatch.matching.matcher import Matcher
from dispatch.trips import service as trips_service
from tests.polling import until
from tests.servers import SocketProxy, postgres_relay


@contextlib.asynccontextmanager
async def _proxied_matcher(
    app: FastAPI, settings: Settings, folder: Path
) -> AsyncIterator[tuple[Matcher, SocketProxy]]:
    """A matcher that reaches PostgreSQL through a relay the test can stop."""
    async with postgres_relay(settings, folder) as (proxy, database_url):
        engine = create_engine(database_url, pool_size=4, max_overflow=0)
        try:
            yield (
                Matcher(
                    engine=engine,
                    sessionmaker=create_sessionmaker(engine),
                    redis=app.state.redis,
                    settings=settings,
                ),
                proxy,
            )
        finally:
            await engine.dispose()


@contextlib.asynccontextmanager
async def _running(coroutine: Any) -> AsyncIterator[None]:
    task = asyncio.create_task(coroutine)
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _said(caplog: pytest.LogCaptureFixture, logger: str, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and r.levelno == level]


def _only_bugs(records: list[logging.LogRecord], error: type[BaseException]) -> None:
    assert records
    for record in records:
        assert record.exc_info is not None and record.exc_info[0] is error, record.getMessage()
        assert "unreachable" not in record.getMessage()


async def _a_bug(*args: Any, **kwargs: Any) -> Any:
    raise ValueError("a bug")


async def _lock_is_free(app: FastAPI, region: str) -> bool:
    async with RegionLock(app.state.engine, region).held() as held:
        return held is not None


async def test_leading_through_a_database_outage_is_said_once_and_a_bug_every_time(
    app: FastAPI,
    settings: Settings,
    short_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(leadership, "LEADERSHIP_RETRY_S", 0.05)
    caplog.set_level(logging.INFO, logger="coop.matcher")
    async with _proxied_matcher(app, settings, short_tmp) as (matcher, proxy):
        await proxy.stop()
        async with _running(matcher.run()):
            outages = matcher.leadership_outages
            await until(lambda: outages.failures >= 3, what="three refused leaderships")
            [warning] = _said(caplog, "coop.matcher", logging.WARNING)
            assert "PostgreSQL" in warning.getMessage() and "unreachable" in warning.getMessage()
            assert _said(caplog, "coop.matcher", logging.ERROR) == []

            await proxy.start()
            await until(lambda: matcher.leading, what="leading after the outage")
            assert outages.outages == 1

            # A bug in the leader's renewal of its lease (its check of the lock): the leadership
            # ends, its traceback is logged at every try, and the loop goes on asking.
            monkeypatch.setattr(Held, "renew", _a_bug)
            await until(lambda: outages.bugs >= 2, what="two leaderships ended by a bug")
    _only_bugs(
        [r for r in _said(caplog, "coop.matcher", logging.ERROR) if "leading" in r.getMessage()],
        ValueError,
    )
    assert len(_said(caplog, "coop.matcher", logging.WARNING)) == 1
    assert await _lock_is_free(app, settings.matcher_region)


async def test_a_batch_says_a_database_outage_once_and_a_bug_every_time(
    app: FastAPI,
    settings: Settings,
    short_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="coop.matcher")
    async with _proxied_matcher(app, settings, short_tmp) as (matcher, proxy):
        # A live connection stands for the lock's: only the batches lose the database here.
        lock_connection = await app.state.engine.connect()
        try:
            await _batches_through_an_outage_then_a_bug(
                matcher, proxy, monkeypatch, caplog, lock_connection
            )
        finally:
            await lock_connection.close()
    _only_bugs(_said(caplog, "coop.matcher", logging.ERROR), ValueError)
    assert len(_said(caplog, "coop.matcher", logging.WARNING)) == 1


async def _batches_through_an_outage_then_a_bug(
    matcher: Matcher,
    proxy: SocketProxy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    lock_connection: Any,
) -> None:
    async with _running(matcher._batches(Held(lock_connection))):
        await until(lambda: matcher.batches >= 1, what="a first batch")
        await proxy.stop()
        outages = matcher.batch_outages
        await until(lambda: outages.failures >= 2, timeout_s=15, what="two failed batches")
        [warning] = _said(caplog, "coop.matcher", logging.WARNING)
        assert "batch" in warning.getMessage() and "unreachable" in warning.getMessage()
        assert _said(caplog, "coop.matcher", logging.ERROR) == []

        await proxy.start()
        monkeypatch.setattr(trips_service, "expire_offers", _a_bug)
        await until(lambda: outages.bugs >= 2, timeout_s=15, what="two batches broken")
        assert outages.outages == 1


async def test_travel_model_failures_say_an_outage_once_and_a_bug_every_time(
    app: FastAPI,
    settings: Settings,
    short_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(travelstore, "RECOMPUTE_RETRY_S", 0.05)
    caplog.set_level(logging.INFO)
    async with _proxied_matcher(app, settings, short_tmp) as (matcher, proxy):
        await proxy.stop()
        for _ in range(3):
            await matcher.travel.try_refresh()
        async with _running(matcher._learn_travel()):
            await until(lambda: matcher.travel_recompute_failures >= 3, what="three failures")
        for logger in ("coop.traveltime", "coop.matcher"):
            [warning] = _said(caplog, logger, logging.WARNING)
            assert "unreachable" in warning.getMessage()
            assert _said(caplog, logger, logging.ERROR) == []
        assert matcher.travel.failures == 3 and matcher.travel.outages.outages == 1

        await proxy.start()
        monkeypatch.setattr(travelstore, "stored_version", _a_bug)
        await matcher.travel.try_refresh()
        monkeypatch.setattr(travelstore, "recompute", _a_bug)
        async with _running(matcher._learn_travel()):
            await until(lambda: matcher.travel_outages.bugs >= 2, what="two broken recomputes")
    assert matcher.travel.outages.bugs == 1 and matcher.travel.model.version == 0
    _only_bugs(_said(caplog, "coop.traveltime", logging.ERROR), ValueError)
    _only_bugs(_said(caplog, "coop.matcher", logging.ERROR), ValueError)


async def test_a_lock_that_cannot_be_released_for_a_bug_is_dropped_and_said_so(
    app: FastAPI,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="coop.matcher")
    monkeypatch.setattr(RegionLock, "_unlock", _a_bug)
    lock = RegionLock(app.state.engine, settings.matcher_region)
    async with lock.held() as held:
        assert held is not None
        assert not await _lock_is_free(app, settings.matcher_region)
    # Its connection was dropped, which released the lock all the same.
    assert await _lock_is_free(app, settings.matcher_region)
    _only_bugs(_said(caplog, "coop.matcher", logging.ERROR), ValueError)


def test_an_outage_log_tells_the_dependency_that_is_away() -> None:
    log = OutageLog(logging.getLogger("coop.test"), "something")
    assert log.failed(ConnectionRefusedError(111, "refused")) == "database"
    assert log.failed(ValueError("a bug")) is None
    assert (log.outages, log.failures, log.bugs) == (1, 1, 1)


async def test_a_leader_cut_off_from_postgresql_steps_down_before_its_lease_can_lapse(
    app: FastAPI,
    settings: Settings,
    short_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A cut link gives no error, only silence: the renewal hangs. The leader must stop saying
    # it leads within STEP_DOWN_S of its last renewal, while the link is still cut, before the
    # lease lapses and another worker may take the lead: two leaders never believe they lead.
    from dispatch.matching import matcher as matcher_module

    monkeypatch.setattr(matcher_module, "RENEW_EVERY_S", 0.2)
    monkeypatch.setattr(matcher_module, "RENEW_TIMEOUT_S", 0.5)
    monkeypatch.setattr(matcher_module, "STEP_DOWN_S", 1.5)
    monkeypatch.setattr(leadership, "UNLOCK_TIMEOUT_S", 0.5)
    async with _proxied_matcher(app, settings, short_tmp) as (matcher, proxy):
        async with _running(matcher.run()):
            await until(lambda: matcher.leading, what="leading")
            epoch = matcher.epoch
            proxy.pause()
            # Whether it hangs in a renewal or in a batch's statement, it says so at once.
            await until(lambda: not matcher.leading, what="stepping down", timeout_s=10)
            assert not proxy.flowing.is_set()
            # The link back before the lease lapsed: nobody took the lead meanwhile, the epoch
            # is still its own, and it leads again once a renewal gets through.
            proxy.resume()
            await until(lambda: matcher.leading, what="leading again", timeout_s=15)
            # Its own epoch still, or the next one if it ended that lead and took it again.
            assert epoch is not None and matcher.epoch in (epoch, epoch + 1)
