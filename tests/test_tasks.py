"""The one background-task runner (`coop.tasks`): a bug fails loudly (logged with its traceback,
recorded, and the test fails), an outage is logged once and the task recovers by itself."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from prometheus_client import CollectorRegistry

from coop.redis_client import create_redis
from coop.tasks import BACKOFF_MAX_S, Step, TaskRunner, backoff_s
from tests.conftest import background_bugs, fail_on_background_bugs
from tests.polling import until
from tests.servers import ThrowawayRedis


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_a_bug_in_a_task_is_logged_with_its_traceback_recorded_and_fails_the_test(
    app: FastAPI, client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    runner: TaskRunner = app.state.tasks

    async def broken() -> None:
        raise KeyError("a bug, not an outage")

    with caplog.at_level(logging.INFO, logger="coop.tasks"):
        handle = runner.every("broken", 0.01, broken)
        await until(lambda: len(runner.bugs) >= 2, what="two failed steps")
        await handle.stop()

    errors = [r for r in caplog.records if r.name == "coop.tasks" and r.levelno == logging.ERROR]
    assert len(errors) >= 2  # a bug is logged every time, never once per outage
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is KeyError
    assert "broken" in errors[0].getMessage()
    assert {(bug.task, type(bug.error)) for bug in runner.bugs} == {("broken", KeyError)}
    metrics = (await client.get("/metrics")).text
    assert 'coop_task_failures_total{kind="bug",task="broken"}' in metrics
    assert 'coop_task_runs_total{task="broken"}' in metrics

    # What the suite's autouse check does after this test: it would fail it.
    assert background_bugs([app]) == runner.bugs
    with pytest.raises(pytest.fail.Exception, match="broken: KeyError"):
        fail_on_background_bugs([app])
    with pytest.raises(pytest.fail.Exception):
        fail_on_background_bugs([(app, "http://served")])  # the socket tests' served app
    runner.bugs.clear()  # this test made its bug on purpose
    fail_on_background_bugs([app])


async def test_an_outage_is_logged_once_and_the_task_recovers_when_redis_returns(
    short_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = ThrowawayRedis(short_tmp)
    await server.start()
    registry = CollectorRegistry()
    runner = TaskRunner(registry=registry)
    redis = create_redis(server.url)
    answered = 0

    async def ping() -> None:
        nonlocal answered
        await redis.ping()
        answered += 1

    def failures() -> float:
        return sample(registry, "coop_task_failures_total", task="pinger", kind="outage")

    try:
        with caplog.at_level(logging.INFO, logger="coop.tasks"):
            runner.every("pinger", 0.02, ping)
            await until(lambda: answered >= 1, what="a first answer")
            server.stop()
            await until(lambda: failures() >= 5, what="five failed ticks")
            await server.start()
            before = answered
            await until(lambda: answered > before, what="the task working again")
    finally:
        await runner.stop()
        await redis.aclose()
        server.stop()

    records = [r for r in caplog.records if r.name == "coop.tasks"]
    warnings = [r for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # not one per tick
    assert "redis unreachable" in warnings[0].getMessage()
    assert warnings[0].exc_info is None  # an outage is no bug: no traceback
    assert [r.getMessage() for r in records if r.levelno == logging.INFO] == [
        "background task pinger: redis answers again"
    ]
    assert runner.bugs == []
    assert sample(registry, "coop_task_failures_total", task="pinger", kind="bug") == 0
    assert sample(registry, "coop_task_last_success_timestamp_seconds", task="pinger") > 0


async def test_a_long_running_task_is_restarted_with_a_capped_deterministic_backoff() -> None:
    registry = CollectorRegistry()
    runner = TaskRunner(registry=registry)
    starts = 0

    async def ends_at_once() -> None:
        nonlocal starts
        starts += 1

    runner.forever("short-lived", ends_at_once)
    try:
        await until(lambda: starts >= 3, what="three starts")
    finally:
        await runner.stop()
    assert sample(registry, "coop_task_restarts_total", task="short-lived") >= 2
    assert runner.bugs == []  # ending is no bug (it is logged as a warning and restarted)
    assert [backoff_s(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.8]
    assert backoff_s(100) == BACKOFF_MAX_S


async def test_stop_cancels_every_task_newest_first() -> None:
    runner = TaskRunner()
    stopped: list[str] = []

    def waits(name: str) -> Step:
        async def run() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                stopped.append(name)

        return run

    runner.forever("first", waits("first"))
    runner.forever("second", waits("second"))
    await asyncio.sleep(0)
    assert runner.names == ["first", "second"]
    await runner.stop()
    assert stopped == ["second", "first"]
    assert runner.names == []
