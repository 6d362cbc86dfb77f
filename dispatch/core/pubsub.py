"""Publishing frames to a rider's or driver's sockets, wherever they are connected.

Any worker (and any package) publishes on Redis; the worker that holds the socket delivers it.
Channel names are the contract between publishers and the realtime hub.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from dispatch.core.frames import Frame
from dispatch.core.redis_client import Redis

CHANNEL_PREFIX = "coop:ws:"


def driver_channel(driver_id: uuid.UUID | str) -> str:
    return f"{CHANNEL_PREFIX}driver:{driver_id}"


def rider_channel(rider_id: uuid.UUID | str) -> str:
    return f"{CHANNEL_PREFIX}rider:{rider_id}"


async def publish(redis: Redis, channel: str, frame: Frame) -> None:
    """Sends one frame to every socket listening on `channel`."""
    await redis.publish(channel, frame.encode())


async def publish_many(redis: Redis, frames: Sequence[tuple[str, Frame]]) -> None:
    """Sends many frames, each to its channel, in one round trip (a pipeline, not a
    transaction: each frame is delivered or not on its own)."""
    if not frames:
        return
    pipe = redis.pipeline(transaction=False)
    for channel, frame in frames:
        pipe.publish(channel, frame.encode())
    await pipe.execute()


async def to_driver(redis: Redis, driver_id: uuid.UUID | str, frame: Frame) -> None:
    await publish(redis, driver_channel(driver_id), frame)


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
