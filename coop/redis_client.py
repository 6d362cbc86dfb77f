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

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from coop.settings import get_settings

Redis = aioredis.Redis


# No command waits longer than this for Redis's answer: a paused or cut-off server must turn into
# an error (a 503, a resync) rather than a request that hangs.
SOCKET_TIMEOUT_S = 3.0


def create_redis(
    redis_url: str, *, sentinels: Sequence[str] | None = None, sentinel_master: str | None = None
) -> Redis:
    """A client of `redis_url`; or, when Sentinels are named (here, or else by
    COOP_REDIS_SENTINELS), of whichever server they call the master now: it asks them again
    after a failover."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 2,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "health_check_interval": 30,
    }
    if sentinels is None:
        # Read here rather than passed by every caller: the single-host set-up names none.
        settings = get_settings()
        sentinels, sentinel_master = settings.redis_sentinels, settings.redis_sentinel_master
    if not sentinels:
        return aioredis.Redis.from_url(redis_url, **options)
    addresses = [(host, int(port)) for host, _, port in (s.rpartition(":") for s in sentinels)]
    # A Sentinel that is down or cut off must not hold up the question: the next one answers.
    sentinel = Sentinel(addresses, socket_timeout=1.0, socket_connect_timeout=1.0)
    client: Redis = sentinel.master_for(
        sentinel_master or "coop", redis_class=aioredis.Redis, **options
    )
    return client


def with_redis_db(redis_url: str, db: int) -> str:
    """The same server, another database number (a Unix socket's URL takes it as `?db=`)."""
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        # Written by hand: urlunsplit drops the empty authority and gives `unix:/path`, which
        # redis-py 8 refuses (it wants `unix:///path`).
        query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("db="))
        return f"unix://{parts.path}?" + "&".join(filter(None, [query, f"db={db}"]))
    return urlunsplit(parts._replace(path=f"/{db}"))
