"""The Redis client. Redis carries only the pub/sub between workers (`dispatch.core.pubsub`):
presence, offer deadlines and idempotency keys are PostgreSQL's, so losing Redis loses no state."""

from __future__ import annotations

from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Request

from dispatch.core.state import CoreState, state_of

Redis = aioredis.Redis


# No command waits longer than this for Redis's answer: a paused or cut-off server must turn into
# an error (a 503, a resync) rather than a request that hangs.
SOCKET_TIMEOUT_S = 3.0


def create_redis(redis_url: str) -> Redis:
    return aioredis.Redis.from_url(
        redis_url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
    )


def get_redis(request: Request) -> Redis:
    return state_of(request.app, CoreState).redis


RedisDep = Annotated[Redis, Depends(get_redis)]
