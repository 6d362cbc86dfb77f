"""Rate limits counted in Redis, so they hold across every worker (docs/security.md).

- Account creation per client address (`COOP_SIGNUP_LIMIT`).
- Requests per account on every authenticated route, HTTP and WebSocket handshakes
  (`COOP_API_LIMIT`). Per account rather than per token: issuing more tokens raises nothing.
- Open WebSockets per account (`COOP_WS_MAX_PER_ACCOUNT`): one more closes the oldest (4009).
- Ballot requests per account and UTC day (`COOP_BALLOT_REQUESTS_PER_DAY`), in a plain counter
  rather than the moving window: a window keeps each request's moment under the account's
  name, which would date a member's ballot (docs/agreement.md, "Ballot secrecy").

The windows are the `limits` library's moving windows in its Redis storage. The admin (the
bootstrap token and personal admin tokens) is exempt: an operator bulk-loads accounts.

When Redis cannot be reached the limits **fail open**: requests go through uncounted, a warning
is logged (at most once per `WARN_EVERY_S`) and `coop_rate_limit_unavailable_total` counts them.
Redis is already what carries every socket's frames; failing closed would turn its outage into an
outage of every authenticated route, while failing open loses only the abuse limit for the
length of the outage, which nobody outside can cause.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from prometheus_client import CollectorRegistry, Counter

from coop.errors import RateLimited
from coop.redis_client import Redis
from coop.settings import Settings

logger = logging.getLogger("coop.ratelimit")

# After a failure to reach Redis the limiter is skipped this long (a dead Redis must not add a
# connection timeout to every request).
SKIP_AFTER_FAILURE_S = 1.0
WARN_EVERY_S = 30.0
REDIS_TIMEOUT_S = 0.5
KEY_PREFIX = "coop:limits"
SECONDS_PER_DAY = 86400


def limits_uri(redis_url: str) -> str:
    """The `limits` storage URI of a redis-py URL (`unix://…` or `redis[s]://…`)."""
    scheme, _, rest = redis_url.partition(":")
    if scheme == "unix":  # `unix:///path` or `unix:/path`
        return "async+redis+unix:///" + rest.lstrip("/")
    return "async+" + redis_url


class RateLimits:
    """The service's rate limits; one per app, created by its lifespan."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.signup = parse_many(settings.signup_limit)
        self.api = parse_many(settings.api_limit)
        self.ballot_requests_per_day = settings.ballot_requests_per_day
        self._pool: aioredis.ConnectionPool = aioredis.ConnectionPool.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        self.storage = RedisStorage(
            limits_uri(settings.redis_url),
            implementation="redispy",
            key_prefix=KEY_PREFIX,
            wrap_exceptions=True,
            connection_pool=self._pool,  # type: ignore[arg-type]
        )
        self.limiter = MovingWindowRateLimiter(self.storage)
        self._skip_until = 0.0
        self._warned_at = -math.inf
        self.unavailable = Counter(
            "coop_rate_limit_unavailable",
            "Requests let through uncounted because Redis could not be reached",
            registry=registry,
        )
        self.refused = Counter(
            "coop_rate_limited",
            "Requests refused with 429, by limit",
            ["limit"],
            registry=registry,
        )

    async def close(self) -> None:
        await self._pool.disconnect()

    async def check_signup(self, client_address: str) -> None:
        await self._hit("signup", self.signup, client_address, what="account creations")

    async def check_api(self, account: str) -> None:
        await self._hit("api", self.api, account, what="requests")

    async def check_ballot(self, account: str) -> None:
        """Counts a ballot request against the account's day. The counter holds a number and
        expires at a fixed hour (the end of the next UTC day), whenever it was first set: no
        moment of any request is kept."""
        now = time.monotonic()
        if now < self._skip_until:
            self.unavailable.inc()
            return
        day = int(time.time() // SECONDS_PER_DAY)
        key = f"{KEY_PREFIX}/ballot/{account}/{day}"
        try:
            async with aioredis.Redis(connection_pool=self._pool) as client:
                async with client.pipeline(transaction=True) as pipe:
                    pipe.incr(key)
                    pipe.expireat(key, (day + 2) * SECONDS_PER_DAY)
                    count, _ = await pipe.execute()
        except Exception as exc:  # Redis away: fail open, as every other limit
            self._unavailable(now, exc)
            return
        if count > self.ballot_requests_per_day:
            retry_after = max(1, math.ceil((day + 1) * SECONDS_PER_DAY - time.time()))
            self.refused.labels("ballot").inc()
            raise RateLimited(
                f"At most {self.ballot_requests_per_day} ballot requests per day; "
                f"try again in {retry_after} s",
                retry_after_s=retry_after,
            )

    def _unavailable(self, now: float, exc: Exception) -> None:
        self._skip_until = now + SKIP_AFTER_FAILURE_S
        self.unavailable.inc()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            logger.warning("rate limits not enforced: Redis unreachable (%s)", type(exc).__name__)

    async def _hit(self, name: str, items: list[RateLimitItem], key: str, *, what: str) -> None:
        now = time.monotonic()
        if now < self._skip_until:
            self.unavailable.inc()
            return
        try:
            for item in items:
                if not await self.limiter.hit(item, name, key):
                    stats = await self.limiter.get_window_stats(item, name, key)
                    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                    self.refused.labels(name).inc()
                    raise RateLimited(
                        f"At most {item.amount} {what} per {_per(item)}; "
                        f"try again in {retry_after} s",
                        retry_after_s=retry_after,
                    )
        except RateLimited:
            raise
        except Exception as exc:  # Redis away: fail open (see the module's docstring)
            self._skip_until = now + SKIP_AFTER_FAILURE_S
            self.unavailable.inc()
            if now - self._warned_at >= WARN_EVERY_S:
                self._warned_at = now
                logger.warning(
                    "rate limits not enforced: Redis unreachable (%s)", type(exc).__name__
                )


def _per(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"


# --- open WebSockets per account ------------------------------------------------------------

# One sorted set per account: connection ids scored by when they opened. Adding one beyond the
# maximum removes (and answers) the oldest, atomically, whichever worker holds them.
_CLAIM = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if over > 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, over - 1)
  redis.call('ZREM', KEYS[1], unpack(oldest))
  return oldest
end
return {}
"""
SLOTS_TTL_S = 7 * 24 * 3600


def new_connection_id() -> str:
    return uuid.uuid4().hex


class SocketSlots:
    """At most `maximum` open sockets per account across workers; the oldest give way."""

    def __init__(self, redis: Redis, maximum: int) -> None:
        self.redis = redis
        self.maximum = maximum
        self._claim: Any = redis.register_script(_CLAIM)

    @staticmethod
    def key(account: str) -> str:
        return f"{KEY_PREFIX}:sockets:{account}"

    async def claim(self, account: str, connection_id: str) -> list[str]:
        """Records an open socket; answers the ids of the older ones that must now close.
        Redis away: nothing is counted (fail open, like the rate limits)."""
        try:
            evicted = await self._claim(
                keys=[self.key(account)],
                args=[connection_id, f"{time.time():.6f}", self.maximum, SLOTS_TTL_S],
            )
        except Exception as exc:
            logger.warning("socket limit not enforced: Redis unreachable (%s)", type(exc).__name__)
            return []
        return [str(item) for item in evicted]

    async def release(self, account: str, connection_id: str) -> None:
        try:
            await self.redis.zrem(self.key(account), connection_id)
        except Exception:  # an entry left behind is the oldest, and gives way first
            logger.debug("could not release socket slot %s", connection_id)
