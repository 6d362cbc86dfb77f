"""The hub's listener on the one runner (`coop.tasks`): Redis away is an outage, logged once
however many times the listener retries, and over when it is subscribed again; a bug in it is
logged with its traceback, recorded, and the listener is started again."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from coop.pubsub import BROADCAST_CHANNEL
from coop.redis_client import create_redis
from coop.tasks import TaskRunner
from dispatch.realtime.hub import Hub
from tests.polling import until
from tests.servers import ThrowawayRedis


async def test_the_listener_logs_a_redis_outage_once_and_recovers(
    short_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = ThrowawayRedis(short_tmp)
    await server.start()
    runner = TaskRunner()
    redis = create_redis(server.url)
    hub = Hub(redis, tasks=runner)
    await hub.start()
    try:
        assert hub.connected
        with caplog.at_level(logging.INFO, logger="coop.realtime"):
            server.stop()
            await until(lambda: not hub.connected, what="the hub seeing Redis gone")
            # Several attempts to reconnect (0.1, 0.5, 1 s apart) while Redis stays away.
            await asyncio.sleep(2.0)
            await server.start()
            await until(lambda: hub.connected, timeout_s=15, what="the hub subscribed again")
            await until(
                lambda: any("answers again" in r.getMessage() for r in caplog.records),
                what="the end of the outage logged",
            )
    finally:
        await hub.stop()
        await redis.aclose()
        server.stop()
    mine = [r for r in caplog.records if r.name == "coop.realtime"]
    warnings = [r.getMessage() for r in mine if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # one outage, one warning: not one per attempt
    assert "realtime listener: redis unreachable" in warnings[0]
    assert [r.getMessage() for r in mine if r.levelno == logging.INFO] == [
        "realtime listener: redis answers again"
    ]
    assert runner.bugs == []


async def test_a_bug_in_the_listener_is_recorded_and_the_listener_restarted(
    short_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = ThrowawayRedis(short_tmp)
    await server.start()
    runner = TaskRunner()
    redis = create_redis(server.url)
    hub = Hub(redis, tasks=runner)
    await hub.start()
    broken_once = False
    handle = hub._handle

    def handle_with_a_bug(message: dict[str, object]) -> None:
        nonlocal broken_once
        if not broken_once and message.get("type") == "message":
            broken_once = True
            raise ZeroDivisionError("a bug in the listener")
        handle(message)

    hub._handle = handle_with_a_bug  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.INFO, logger="coop.tasks"):
            await redis.publish(BROADCAST_CHANNEL, "not a frame")
            await until(lambda: len(runner.bugs) == 1, what="the bug recorded")
            await until(lambda: hub.connected, what="the listener started again")
    finally:
        await hub.stop()
        await redis.aclose()
        server.stop()
    assert runner.bugs[0].task == "realtime-hub"
    assert isinstance(runner.bugs[0].error, ZeroDivisionError)
    [logged] = [r for r in caplog.records if r.name == "coop.tasks" and r.levelno >= logging.ERROR]
    assert logged.exc_info is not None and logged.exc_info[0] is ZeroDivisionError
