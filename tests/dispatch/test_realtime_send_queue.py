"""A socket's light send queue and its closing future (dispatch.realtime.hub), the parts of
asyncio.Queue and asyncio.Event a socket uses."""

from __future__ import annotations

import asyncio

import pytest

from dispatch.realtime.hub import CLOSE_TOO_SLOW, Connection, SendQueue


async def test_first_in_first_out_and_bounded() -> None:
    queue = SendQueue(3)
    for text in ("a", "b", "c"):
        queue.put_nowait(text)
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait("d")
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == ["a", "b", "c"]
    assert len(queue) == 0
    with pytest.raises(TimeoutError):  # nothing left: a get waits
        await asyncio.wait_for(queue.get(), 0.01)


async def test_a_waiting_get_wakes_on_put() -> None:
    queue = SendQueue(2)
    getting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getting.done()
    queue.put_nowait("frame")
    assert await asyncio.wait_for(getting, 1.0) == "frame"


async def test_a_cancelled_get_leaves_the_queue_usable() -> None:
    queue = SendQueue(2)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.get(), 0.01)
    queue.put_nowait("after")
    assert await asyncio.wait_for(queue.get(), 1.0) == "after"


async def test_closed_is_done_once_shut_whenever_asked() -> None:
    early = Connection(queue_size=2, label="early")
    early.shut(1000, "bye")
    assert early.closed().done()

    late = Connection(queue_size=1, label="late")
    closed = late.closed()
    assert not closed.done()
    late.release([])
    assert late.push("one") and not late.push("two")  # overflow shuts it
    assert closed.done() and late.close_code == CLOSE_TOO_SLOW
    assert late.closing.is_set()
