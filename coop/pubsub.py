"""Publishing frames to a rider's or driver's sockets, wherever they are connected.

Any worker (and any package) publishes on Redis; the worker that holds the socket delivers it.
Channel names are the contract between publishers and the realtime hub.

No frame is lost without its client knowing. When a publish fails (Redis is away), the frame
goes straight to the socket if this very worker holds it (`LostFrames.local`, filled in by the
realtime hub); otherwise the channel is remembered (`lost_frames`), and once Redis answers
again the hub publishes a `RESYNC` control message on it: the worker holding that socket closes
it with 1012, and the client reconnects and gets its current state.
"""

from __future__ import annotations

import asyncio
import json
import uuid
import weakref
from collections.abc import Callable, Sequence

from coop.frames import Frame
from coop.redis_client import Redis

CHANNEL_PREFIX = "coop:ws:"
# A control message, never sent to a client: "frames for this channel were lost: resync it".
RESYNC = '{"type":"_resync"}'
# Beyond this many channels to repair, every socket of every worker is resynced instead.
MAX_LOST_CHANNELS = 10_000
# Where every worker's hub also listens: a resync of all sockets.
BROADCAST_CHANNEL = f"{CHANNEL_PREFIX}all"


class LostFrames:
    """The process's record of frames Redis did not take, and the channels to resync."""

    def __init__(self) -> None:
        self.channels: set[str] = set()
        self.everything = False  # too many channels to name: resync them all
        self.lost = 0  # frames that reached no socket (their clients are resynced)
        self.delivered_locally = 0  # frames that went straight to a socket of this process
        # The hub of this process: delivers a frame to its local sockets, answers how many.
        self.local: Callable[[str, str], int] | None = None

    def publish_failed(self, channel: str, text: str) -> None:
        local = self.local
        if local is not None and local(channel, text) > 0:
            self.delivered_locally += 1
            return
        self.lost += 1
        if len(self.channels) >= MAX_LOST_CHANNELS:
            self.everything = True
            self.channels.clear()
        elif not self.everything:
            self.channels.add(channel)

    def take(self) -> tuple[bool, list[str]]:
        """What to repair now: (every channel?, channels); forgotten until put back."""
        everything, channels = self.everything, sorted(self.channels)
        self.everything, self.channels = False, set()
        return everything, channels

    def put_back(self, everything: bool, channels: list[str]) -> None:
        self.everything = self.everything or everything
        if not self.everything:
            self.channels.update(channels)


_LOST: weakref.WeakKeyDictionary[Redis, LostFrames] = weakref.WeakKeyDictionary()


def lost_frames(redis: Redis) -> LostFrames:
    """The record of frames lost through this Redis client (one per worker: its app's client)."""
    lost = _LOST.get(redis)
    if lost is None:
        lost = _LOST[redis] = LostFrames()
    return lost


# A control message: "flush the positions you buffer, then push a word onto this list". The
# worker completing a trip sends it on the driver's channel, which only the worker holding the
# driver's socket (the one buffering their positions) listens to.
FLUSH_REQUEST = '{"type":"_flush","reply":"'
FLUSH_WAIT_S = 2.0


def flush_request(reply_key: str) -> str:
    return f'{FLUSH_REQUEST}{reply_key}"}}'


def flush_reply_key(text: str) -> str | None:
    if not text.startswith(FLUSH_REQUEST):
        return None
    return text[len(FLUSH_REQUEST) : -2] or None


async def request_flush(redis: Redis, channel: str, wait_s: float = FLUSH_WAIT_S) -> int:
    """Asks every worker holding a socket of `channel` to flush its buffered positions, and
    waits (at most `wait_s`) until each has: answers how many did."""
    reply_key = f"{CHANNEL_PREFIX}flushed:{uuid.uuid4()}"
    listeners = int(await redis.publish(channel, flush_request(reply_key)))
    done = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    try:
        while done < listeners:
            left = deadline - loop.time()
            if left <= 0.01:
                break
            if await redis.blpop([reply_key], timeout=left) is None:
                break
            done += 1
    finally:
        await redis.delete(reply_key)
    return done


async def answer_flush(redis: Redis, reply_key: str) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.rpush(reply_key, "1")
        pipe.expire(reply_key, 30)
        await pipe.execute()


def driver_channel(driver_id: uuid.UUID | str) -> str:
    return f"{CHANNEL_PREFIX}driver:{driver_id}"


def rider_channel(rider_id: uuid.UUID | str) -> str:
    return f"{CHANNEL_PREFIX}rider:{rider_id}"


async def publish(redis: Redis, channel: str, frame: Frame) -> int:
    """Sends one frame to every socket listening on `channel`.

    Raises what Redis raised, after recording the frame in `lost_frames(redis)` (so its client
    is resynced). Answers how many workers hold a socket listening on `channel`."""
    return await publish_text(redis, channel, frame.encode())


async def publish_text(redis: Redis, channel: str, text: str) -> int:
    try:
        return int(await redis.publish(channel, text))
    except Exception:
        lost_frames(redis).publish_failed(channel, text)
        raise


async def publish_many(redis: Redis, frames: Sequence[tuple[str, Frame]]) -> list[int]:
    """Sends many frames, each to its channel, in one round trip (a pipeline, not a
    transaction: each frame is delivered or not on its own). Answers, for each frame, how many
    workers hold a socket listening on its channel (0: no socket is open for it anywhere)."""
    if not frames:
        return []
    texts = [(channel, frame.encode()) for channel, frame in frames]
    pipe = redis.pipeline(transaction=False)
    for channel, text in texts:
        pipe.publish(channel, text)
    try:
        receivers = await pipe.execute()
    except Exception:
        # Which of them Redis took is unknown: each is delivered here or resynced.
        lost = lost_frames(redis)
        for channel, text in texts:
            lost.publish_failed(channel, text)
        raise
    return [int(count) for count in receivers]


async def to_driver(redis: Redis, driver_id: uuid.UUID | str, frame: Frame) -> int:
    """Answers how many workers hold a socket of the driver (0: none open anywhere)."""
    return await publish(redis, driver_channel(driver_id), frame)


# Orders for the sockets themselves, heard by every worker's hub: close one connection (a newer
# one took its slot) or every connection of a token (it was revoked).
CONTROL_CHANNEL = f"{CHANNEL_PREFIX}control"


async def close_connection(redis: Redis, connection_id: str, *, code: int, reason: str) -> None:
    await redis.publish(
        CONTROL_CHANNEL,
        json.dumps({"op": "close", "connection": connection_id, "code": code, "reason": reason}),
    )


async def token_revoked(redis: Redis, token_key: str) -> None:
    await redis.publish(CONTROL_CHANNEL, json.dumps({"op": "revoke", "token": token_key}))
