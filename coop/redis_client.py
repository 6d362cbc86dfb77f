"""The Redis client. Redis carries only the pub/sub between workers (`coop.pubsub`):
presence, offer deadlines and idempotency keys are PostgreSQL's, so losing Redis loses no state."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis

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


def with_redis_db(redis_url: str, db: int) -> str:
    """The same server, another database number (a Unix socket's URL takes it as `?db=`)."""
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        # Written by hand: urlunsplit drops the empty authority and gives `unix:/path`, which
        # redis-py 8 refuses (it wants `unix:///path`).
        query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("db="))
        return f"unix://{parts.path}?" + "&".join(filter(None, [query, f"db={db}"]))
    return urlunsplit(parts._replace(path=f"/{db}"))
