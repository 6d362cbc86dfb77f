"""The limits under a burst (docs/security.md, "Round two"): many requests or handshakes at once
must be counted or refused, never let through because the limiter's connections ran out."""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import signal
import uuid
from pathlib import Path

import httpx
import pytest
from httpx import AsyncClient
from redis.exceptions import TimeoutError as RedisTimeoutError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from coop import ratelimit
from coop.errors import RateLimited
from coop.ratelimit import RateLimits
from coop.settings import Settings
from tests.builders import make_rider, serve
from tests.servers import ThrowawayRedis

# Fewer limiter connections than the requests in flight: the pool a burst used to exhaust.
FEW_CONNECTIONS = 2


def _metric(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


async def test_a_burst_of_one_accounts_requests_is_counted_not_let_through(
    settings: Settings,
) -> None:
    async with serve(
        settings, api_limit="20/minute", rate_limit_redis_connections=FEW_CONNECTIONS
    ) as worker:
        rider = await make_rider(worker.http)
        burst = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with AsyncClient(base_url=worker.base_url, limits=burst, timeout=60) as http:
            responses = await asyncio.gather(
                *(http.get(f"/v1/trips/{uuid.uuid4()}", headers=rider.headers) for _ in range(80))
            )
        statuses = collections.Counter(response.status_code for response in responses)
        assert set(statuses) <= {404, 429}, statuses
        assert statuses[404] <= 20, statuses
        metrics = (await worker.http.get("/metrics")).text
        # Nothing was taken for an outage: Redis was there all along.
        assert _metric(metrics, "coop_rate_limit_unavailable_total") == 0


async def _open(url: str, headers: dict[str, str]) -> ClientConnection | None:
    try:
        return await connect(url, additional_headers=headers, open_timeout=30, ping_interval=None)
    except InvalidStatus as refused:  # 429: refused before the upgrade, also within the cap
        assert refused.response.status_code == 429
        return None


async def test_a_burst_of_handshakes_keeps_the_socket_cap(settings: Settings) -> None:
    async with serve(settings, rate_limit_redis_connections=FEW_CONNECTIONS) as worker:
        riders = [await make_rider(worker.http, name=f"Burst {n}") for n in range(12)]
        url = worker.ws_url("/v1/ws/rider")
        opened = await asyncio.gather(
            *(_open(url, rider.headers) for rider in riders for _ in range(4))
        )
        by_rider = [opened[n * 4 : n * 4 + 4] for n in range(len(riders))]
        try:
            # The oldest socket of an account over the cap is closed through Redis: give it a
            # moment, then no account may keep more than its three.
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                still_open = [
                    sum(1 for c in sockets if c is not None and c.close_code is None)
                    for sockets in by_rider
                ]
                if max(still_open) <= 3:
                    break
                assert asyncio.get_running_loop().time() < deadline, still_open
                await asyncio.sleep(0.1)
            for sockets in by_rider:  # a socket that was closed said why: replaced, or retry
                for connection in sockets:
                    if connection is not None and connection.close_code is not None:
                        assert connection.close_code in {4009, 1013}, connection.close_code
        finally:
            for connection in opened:
                if connection is not None:
                    await connection.close()


async def test_a_busy_limiter_refuses_and_says_so(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ratelimit, "WAIT_S", 0.05)
    limits = RateLimits(settings.model_copy(update={"rate_limit_redis_connections": 1}))
    try:
        await limits.check_api("rider:calm")  # Redis answers
        async with limits._gate:  # every limiter connection taken, for longer than a turn
            with caplog.at_level(logging.WARNING, "coop.ratelimit"):
                with pytest.raises(RateLimited) as refused:
                    await limits.check_api("rider:burst")
        assert refused.value.headers["Retry-After"] == "1"
        assert limits.busy.labels("api")._value.get() == 1
        assert limits.unavailable._value.get() == 0
        assert "rate limiter busy" in caplog.text
        # Busy is no outage: the next request is counted, not skipped.
        await limits.check_api("rider:burst")
        assert limits.unavailable._value.get() == 0
    finally:
        await limits.close()


async def test_an_outage_still_fails_open_and_the_socket_cap_closed(
    settings: Settings, short_tmp: Path
) -> None:
    redis = ThrowawayRedis(short_tmp)
    limits = RateLimits(settings.model_copy(update={"redis_url": redis.url}))
    slots = ratelimit.SocketSlots(limits, maximum=3)
    try:
        await limits.check_api("rider:down")  # let through, counted as unavailable
        assert limits.unavailable._value.get() == 1
        with pytest.raises(ratelimit.SocketCapUnavailable):
            await slots.claim("rider:down", ratelimit.new_connection_id())
    finally:
        await limits.close()
        redis.stop()


async def _answered_late() -> bool:
    """A limiter command whose answer came after the socket timeout, as redis-py reports it."""
    raise RedisTimeoutError("Timeout reading from socket")


async def test_a_late_answer_is_an_outage_only_if_redis_does_not_answer_a_ping(
    settings: Settings, short_tmp: Path
) -> None:
    """A worker whose own loop is held up by a burst reads Redis's answers late: while Redis
    answers a PING on a connection of its own, that is busy (refused and counted), never an
    outage that would let the burst through. A paused Redis answers neither: an outage."""
    limits = RateLimits(settings)
    try:
        with pytest.raises(ratelimit.LimiterBusy):
            await limits.run(_answered_late)
        assert await limits.answers()
    finally:
        await limits.close()

    paused = ThrowawayRedis(short_tmp)
    await paused.start()
    assert paused.process is not None
    os.kill(paused.process.pid, signal.SIGSTOP)
    limits = RateLimits(settings.model_copy(update={"redis_url": paused.url}))
    try:
        with pytest.raises(ratelimit.LimiterDown):
            await limits.run(_answered_late)
        # The rate limits then fail open, as for any outage.
        await limits.check_api("rider:paused")
        assert limits.unavailable._value.get() == 1
    finally:
        await limits.close()
        os.kill(paused.process.pid, signal.SIGCONT)
        paused.stop()
