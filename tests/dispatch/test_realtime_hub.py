"""The hub on its own, against real Redis servers: subscriptions follow the local sockets, frames
keep their order through a connect, queues stay bounded, and a Redis restart is survived."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from coop.redis_client import Redis, create_redis
from coop.settings import Settings
from dispatch.realtime.hub import CLOSE_RESYNC, CLOSE_TOO_SLOW, Connection, Hub
from tests.servers import ThrowawayRedis

CHANNEL = "coop:ws:driver:test"


@pytest_asyncio.fixture
async def hub(settings: Settings, redis: Redis) -> AsyncIterator[Hub]:
    hub = Hub(create_redis(settings.redis_url))
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


def _unseq(texts: list[str], first: int = 1) -> list[str]:
    """The frames without their `seq`, checked to count up from `first`."""
    plain = []
    for n, text in enumerate(texts, start=first):
        prefix = f'{{"seq":{n},'
        assert text.startswith(prefix), f"{text!r} should have seq {n}"
        plain.append("{" + text[len(prefix) :])
    return plain


async def _drain(
    connection: Connection, count: int, timeout_s: float = 5.0, first: int = 1
) -> list[str]:
    texts = [await asyncio.wait_for(connection.queue.get(), timeout_s) for _ in range(count)]
    return _unseq(texts, first)


async def test_frames_reach_every_local_socket_of_the_channel(hub: Hub, redis: Redis) -> None:
    one, two = Connection(queue_size=8, label="one"), Connection(queue_size=8, label="two")
    for connection in (one, two):
        await hub.register(CHANNEL, connection)
        connection.release([])
    assert await redis.publish(CHANNEL, '{"type":"note"}') == 1  # one subscription per worker
    assert await _drain(one, 1) == await _drain(two, 1) == ['{"type":"note"}']


async def test_the_subscription_lasts_while_any_socket_wants_it(hub: Hub, redis: Redis) -> None:
    one, two = Connection(queue_size=8, label="one"), Connection(queue_size=8, label="two")
    await hub.register(CHANNEL, one)
    await hub.register(CHANNEL, two)
    await hub.unregister(CHANNEL, one)
    assert await redis.publish(CHANNEL, "{}") == 1
    await hub.unregister(CHANNEL, two)
    assert await redis.publish(CHANNEL, "{}") == 0
    assert hub.connections == 0


async def test_sockets_coming_and_going_at_once_leave_the_right_subscription(
    hub: Hub, redis: Redis
) -> None:
    stayer = Connection(queue_size=8, label="stayer")

    async def come_and_go(index: int) -> None:
        connection = Connection(queue_size=8, label=str(index))
        await hub.register(CHANNEL, connection)
        await hub.unregister(CHANNEL, connection)

    await asyncio.gather(*(come_and_go(i) for i in range(20)), hub.register(CHANNEL, stayer))
    stayer.release([])
    assert await redis.publish(CHANNEL, '{"type":"still here"}') == 1
    assert await _drain(stayer, 1) == ['{"type":"still here"}']
    await hub.unregister(CHANNEL, stayer)
    assert await redis.publish(CHANNEL, "{}") == 0


async def test_a_connecting_socket_gets_its_state_before_what_arrived_meanwhile() -> None:
    connection = Connection(queue_size=8, label="c")
    connection.push('{"n":"during-1"}')
    connection.push('{"n":"during-2"}')
    assert len(connection.queue) == 0  # held until the current state is queued
    connection.release(['{"n":"hello"}', '{"n":"state"}'])
    connection.push('{"n":"after"}')
    queued = [await connection.queue.get() for _ in range(len(connection.queue))]
    # In that order, numbered from 1: the client can tell it missed nothing.
    assert _unseq(queued) == [
        '{"n":"hello"}',
        '{"n":"state"}',
        '{"n":"during-1"}',
        '{"n":"during-2"}',
        '{"n":"after"}',
    ]


def test_a_full_queue_closes_the_connection_instead_of_growing() -> None:
    connection = Connection(queue_size=3, label="slow")
    connection.release([])
    assert all(connection.push(f"frame {i}") for i in range(3))
    assert not connection.push("one too many")
    assert connection.closing.is_set()
    assert connection.close_code == CLOSE_TOO_SLOW and "too slow" in connection.close_reason
    assert len(connection.queue) == 3
    assert not connection.push("after closing")  # nothing more is taken


def test_a_flood_before_release_is_bounded_too() -> None:
    connection = Connection(queue_size=2, label="slow")
    assert connection.push("a") and connection.push("b")
    assert not connection.push("c")
    assert connection.close_code == CLOSE_TOO_SLOW


# --- Redis restarts -------------------------------------------------------------------------


async def test_the_hub_resubscribes_after_redis_restarts(
    settings: Settings, short_tmp: Path
) -> None:
    redis = ThrowawayRedis(short_tmp)
    await redis.start()
    url = redis.url
    hub, publisher = Hub(create_redis(url)), create_redis(url)
    await hub.start()
    try:
        connection = Connection(queue_size=16, label="driver")
        await hub.register(CHANNEL, connection)
        connection.release([])
        assert await publisher.publish(CHANNEL, '{"n":1}') == 1
        assert await _drain(connection, 1) == ['{"n":1}']

        redis.stop()
        await redis.start()
        # The listener reconnects by itself and subscribes the channels its sockets want.
        for _ in range(300):
            try:
                if await publisher.publish(CHANNEL, '{"n":2}') == 1:
                    break
            except Exception:  # the publisher's own connection is being re-made
                pass
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the hub did not resubscribe")
        # Whatever was published while Redis was away never reached the socket: it was told to
        # reconnect (1012) for its current state. A socket connecting now gets frames again.
        assert connection.closing.is_set() and connection.close_code == CLOSE_RESYNC
        assert hub.redis_losses == 1 and hub.resynced == 1
        await hub.unregister(CHANNEL, connection)
        again = Connection(queue_size=16, label="driver, again")
        await hub.register(CHANNEL, again)
        again.release([])
        assert await publisher.publish(CHANNEL, '{"n":3}') == 1
        received = await _drain(again, 1)
        if received == ['{"n":2}']:  # it was still on its way from Redis to the hub
            received = await _drain(again, 1, first=2)
        assert received == ['{"n":3}']
    finally:
        await hub.stop()
        await publisher.aclose()
        redis.stop()
