"""The Redis client. Redis holds what is shared between workers but is no record, all of it
short-lived:

- the pub/sub between workers (`coop.pubsub`): frames for riders and drivers, socket orders
  (close, token revoked), resyncs, and the replies to a flush one worker asks of another (a list
  per request, popped once and deleted);
- the rate limits' moving windows and the ballot requests' daily counters, and the open sockets
  per account (`coop.ratelimit`, on a pool of their own);
- the web pages' sessions: a session id's hash to a token's hash, with an idle expiry
  (`server.web.sessions`).

Presence, offer deadlines and idempotency keys are PostgreSQL's. Losing Redis loses no record:
while it is away the limits fail open (the socket cap closed) and the pages see no one signed
in; sockets reconnect to their current state, and a Redis that lost its data only signs the
pages' visitors out."""

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
