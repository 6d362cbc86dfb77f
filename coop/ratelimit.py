"""Rate limits counted in Redis, so they hold across every worker (docs/security.md).

- Account creation per client address (`COOP_SIGNUP_LIMIT`; an IPv6 address counts by its /64)
  and for the whole service (`COOP_SIGNUP_GLOBAL_LIMIT`).
- Requests per account on every authenticated route and page, HTTP and WebSocket handshakes
  (`COOP_API_LIMIT`). Per account rather than per token: issuing more tokens raises nothing.
- Requests without an account (public routes and pages) per client address
  (`COOP_ANONYMOUS_LIMIT`).
- Open WebSockets per account (`COOP_WS_MAX_PER_ACCOUNT`): one more closes the oldest (4009).
- Ballot requests per account and UTC day (`COOP_BALLOT_REQUESTS_PER_DAY`), in a plain counter
  rather than the moving window: a window keeps each request's moment under the account's
  name, which would date a member's ballot (docs/agreement.md, "Ballot secrecy").

The windows are the `limits` library's moving windows in its Redis storage. The admin (the
bootstrap token and personal admin tokens) is exempt: an operator bulk-loads accounts.

The limiter has its own pool of `COOP_RATE_LIMIT_REDIS_CONNECTIONS` connections and lets no more
commands than that be in flight: a burst waits its turn (up to `WAIT_S`) instead of exhausting
the pool, and one that waits longer is **busy**: refused (`429`; the socket cap closes the socket
with 1013), counted in `coop_rate_limit_busy_total` and logged as such. A burst is something a
caller can cause, so it never lets requests through uncounted.

A command that timed out while Redis answers a PING on a connection of its own was late because
this worker's own loop was held up (a burst): busy too. Only a real outage (Redis refuses the
connection, or answers neither the command nor that PING within `PROBE_TIMEOUT_S`) **fails
open** for the rate limits: requests go through uncounted, `coop_rate_limit_unavailable_total`
counts them, and the outage is logged once (`coop.outages.Outage`): a warning when it starts, an
info when the limiter's next command succeeds. Redis is already what
carries every socket's frames; failing closed would turn its outage into an outage of every
authenticated route, while failing open loses only the abuse limit for the length of an outage,
which nobody outside can cause. The socket cap fails closed in every case (sockets are refused
without Redis anyway).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import redis.asyncio as aioredis
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import MaxConnectionsError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from coop.errors import RateLimited
from coop.outages import Outage
from coop.settings import Settings

logger = logging.getLogger("coop.ratelimit")

# After a real outage the limiter is skipped this long (a dead Redis must not add a connection
# timeout to every request). A busy limiter never starts it: that is what a burst could cause.
SKIP_AFTER_FAILURE_S = 1.0
WARN_EVERY_S = 30.0
REDIS_TIMEOUT_S = 0.5
# How long a request waits for a free limiter connection before the limiter counts as busy:
# long enough for thousands of queued commands of a fraction of a millisecond each.
WAIT_S = 2.0
# What a refusal for busyness asks the client to wait.
BUSY_RETRY_AFTER_S = 1
# A command that timed out is an outage only if Redis does not answer a PING on a connection of
# its own within this: a worker's event loop held up by a burst makes answers late to read, and
# a burst is something a caller can cause.
PROBE_TIMEOUT_S = 2.0
KEY_PREFIX = "coop:limits"
SECONDS_PER_DAY = 86400

T = TypeVar("T")


class LimiterBusy(Exception):
    """No limiter connection came free within `WAIT_S`: a burst, not an outage."""


class LimiterDown(Exception):
    """Redis refused the connection or did not answer: a real outage (no args: already known,
    within the skip that followed it)."""


def limits_uri(redis_url: str) -> str:
    """The `limits` storage URI of a redis-py URL (`unix://…` or `redis[s]://…`)."""
    scheme, _, rest = redis_url.partition(":")
    if scheme == "unix":  # `unix:///path` or `unix:/path`
        return "async+redis+unix:///" + rest.lstrip("/")
    return "async+" + redis_url


def address_key(host: str) -> str:
    """The key of a client address's limits: an IPv6 address counts by its /64 (one customer's
    usual allocation: anyone holding one has 2**64 addresses to rotate through), an IPv4 one
    (also when IPv4-mapped) by itself."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RateLimits:
    """The service's rate limits; one per app, created by its lifespan."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.signup = parse_many(settings.signup_limit)
        self.signup_global = parse_many(settings.signup_global_limit)
        self.api = parse_many(settings.api_limit)
        self.anonymous = parse_many(settings.anonymous_limit)
        self.share = parse_many(settings.share_limit)
        self.share_misses = parse_many(settings.share_miss_limit)
        self.ballot_requests_per_day = settings.ballot_requests_per_day
        connections = settings.rate_limit_redis_connections
        self._pool: aioredis.ConnectionPool = aioredis.ConnectionPool.from_url(
            settings.redis_url,
            max_connections=connections,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        self.redis: aioredis.Redis = aioredis.Redis(connection_pool=self._pool)
        # One command in flight per connection: the queue forms here, where its wait is bounded,
        # and the pool never runs out (redis-py files its MaxConnectionsError under
        # ConnectionError, an outage's class: that is how a burst used to pass for an outage).
        self._gate = asyncio.Semaphore(connections)
        self.storage = RedisStorage(
            limits_uri(settings.redis_url),
            implementation="redispy",
            key_prefix=KEY_PREFIX,
            wrap_exceptions=True,
            connection_pool=self._pool,  # type: ignore[arg-type]
        )
        self.limiter = MovingWindowRateLimiter(self.storage)
        self._skip_until = 0.0
        self._redis_url = settings.redis_url
        self._probe: asyncio.Future[bool] | None = None
        self._outage = Outage(logger, "rate limits not enforced")
        self._busy_warned_at = -math.inf
        self._busy_since_warning = 0
        self.unavailable = Counter(
            "coop_rate_limit_unavailable",
            "Requests let through uncounted because Redis could not be reached",
            registry=registry,
        )
        self.busy = Counter(
            "coop_rate_limit_busy",
            "Requests refused because no limiter connection came free in time, by limit",
            ["limit"],
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
        """One more account from this address: its own limit, then the service's ceiling."""
        await self._hit(
            "signup", self.signup, address_key(client_address), what="account creations"
        )
        await self._hit("signup_global", self.signup_global, "all", what="new accounts")

    async def check_api(self, account: str) -> None:
        await self._hit("api", self.api, account, what="requests")

    async def check_ballot(self, account: str) -> None:
        """Counts a ballot request against the account's day. The counter holds a number and
        expires at a fixed hour (the end of the next UTC day), whenever it was first set: no
        moment of any request is kept. Through the limiter's turns, as every other limit."""
        if time.monotonic() < self._skip_until:
            self.unavailable.inc()
            return
        day = int(time.time() // SECONDS_PER_DAY)
        key = f"{KEY_PREFIX}/ballot/{account}/{day}"

        async def count() -> int:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expireat(key, (day + 2) * SECONDS_PER_DAY)
                counted, _ = await pipe.execute()
            return int(counted)

        try:
            counted = await self.run(count)
        except LimiterBusy:
            self.note_busy("ballot")
            raise RateLimited(
                f"Too many requests at once; try again in {BUSY_RETRY_AFTER_S} s",
                retry_after_s=BUSY_RETRY_AFTER_S,
            ) from None
        except LimiterDown as down:  # fail open, as every other limit
            if down.args:
                self.note_down(str(down))
            else:
                self.unavailable.inc()
            return
        if counted > self.ballot_requests_per_day:
            retry_after = max(1, math.ceil((day + 1) * SECONDS_PER_DAY - time.time()))
            self.refused.labels("ballot").inc()
            raise RateLimited(
                f"At most {self.ballot_requests_per_day} ballot requests per day; "
                f"try again in {retry_after} s",
                retry_after_s=retry_after,
            )

    async def check_anonymous(self, client_address: str) -> None:
        await self._hit("anonymous", self.anonymous, address_key(client_address), what="requests")

    async def check_share(self, client_address: str) -> None:
        """One more shared-trip link opened from this address (`COOP_SHARE_LIMIT`); refused
        while the address's links that did not open exceed `COOP_SHARE_MISS_LIMIT`."""
        key = address_key(client_address)
        await self._hit("share", self.share, key, what="shared trips opened")
        await self._hit("share_misses", self.share_misses, key, what="unknown links", count=False)

    async def note_share_miss(self, client_address: str) -> None:
        """Counts a link that did not open; the refusal, if any, comes with the next one (this
        one is answered `404` as any other miss)."""
        try:
            await self._hit("share_misses", self.share_misses, address_key(client_address), what="")
        except RateLimited:
            pass

    async def run(self, command: Callable[[], Awaitable[T]]) -> T:
        """Runs one limiter command in its turn; raises `LimiterBusy` or `LimiterDown`."""
        try:
            async with asyncio.timeout(WAIT_S):
                await self._gate.acquire()
        except TimeoutError:
            raise LimiterBusy() from None
        try:
            if time.monotonic() < self._skip_until:  # went down while this one waited its turn
                raise LimiterDown()
            answer = await command()
            self._outage.ended()
            return answer
        except (StorageError, RedisError, OSError) as exc:
            cause = exc.storage_error if isinstance(exc, StorageError) else exc
            if isinstance(cause, MaxConnectionsError):  # cannot happen behind the gate
                raise LimiterBusy() from exc
            if isinstance(cause, RedisTimeoutError | TimeoutError) and await self.answers():
                raise LimiterBusy() from exc
            raise LimiterDown(type(cause).__name__) from exc
        finally:
            self._gate.release()

    async def answers(self) -> bool:
        """Whether Redis answers a PING now, on a connection of its own (one probe at a time,
        shared by every command that timed out meanwhile)."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._ping())
        return await asyncio.shield(self._probe)

    async def _ping(self) -> bool:
        client = aioredis.Redis.from_url(
            self._redis_url,
            socket_timeout=PROBE_TIMEOUT_S,
            socket_connect_timeout=PROBE_TIMEOUT_S,
        )
        try:
            return bool(await client.ping())
        except (RedisError, OSError):
            return False
        finally:
            await client.aclose()

    def note_busy(self, name: str) -> None:
        """Counts and (at most every `WARN_EVERY_S`) logs a refusal for busyness."""
        self.busy.labels(name).inc()
        self._busy_since_warning += 1
        now = time.monotonic()
        if now - self._busy_warned_at >= WARN_EVERY_S:
            self._busy_warned_at = now
            logger.warning(
                "rate limiter busy: %d request(s) refused, no limiter connection free within "
                "%.1f s (Redis is reachable; a burst of requests is queued)",
                self._busy_since_warning,
                WAIT_S,
            )
            self._busy_since_warning = 0

    def note_down(self, reason: str) -> None:
        self._skip_until = time.monotonic() + SKIP_AFTER_FAILURE_S
        self.unavailable.inc()
        self._outage.began_named("redis", reason)

    async def _hit(
        self, name: str, items: list[RateLimitItem], key: str, *, what: str, count: bool = True
    ) -> None:
        """Counts one request against each of `items` (with `count=False`, only checks that
        none is exhausted) and refuses with `429` past any of them."""
        if time.monotonic() < self._skip_until:
            self.unavailable.inc()
            return
        for item in items:
            try:
                action = self.limiter.hit if count else self.limiter.test
                if await self.run(partial(action, item, name, key)):
                    continue
                stats = await self.run(partial(self.limiter.get_window_stats, item, name, key))
            except LimiterBusy:
                self.note_busy(name)
                raise RateLimited(
                    f"Too many requests at once; try again in {BUSY_RETRY_AFTER_S} s",
                    retry_after_s=BUSY_RETRY_AFTER_S,
                ) from None
            except LimiterDown as down:  # fail open (see the module's docstring)
                if down.args:
                    self.note_down(str(down))
                else:
                    self.unavailable.inc()
                return
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            self.refused.labels(name).inc()
            raise RateLimited(
                f"At most {item.amount} {what} per {_per(item)}; try again in {retry_after} s",
                retry_after_s=retry_after,
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


class SocketCapUnavailable(Exception):
    """The socket cap could not be counted (limiter busy or Redis away): the socket closes."""


class SocketSlots:
    """At most `maximum` open sockets per account across workers; the oldest give way. Counted
    through the limiter's own connections and turns, never the pub/sub client's pool."""

    def __init__(self, limits: RateLimits, maximum: int) -> None:
        self.limits = limits
        self.maximum = maximum
        self._claim: Any = limits.redis.register_script(_CLAIM)
        self._outage = Outage(logger, "sockets refused, the socket cap uncountable")

    @staticmethod
    def key(account: str) -> str:
        return f"{KEY_PREFIX}:sockets:{account}"

    async def claim(self, account: str, connection_id: str) -> list[str]:
        """Records an open socket; answers the ids of the older ones that must now close.
        Raises `SocketCapUnavailable` when it cannot count (fails closed: a burst of handshakes
        must not keep more sockets than the cap)."""
        try:
            evicted = await self.limits.run(
                partial(
                    self._claim,
                    keys=[self.key(account)],
                    args=[connection_id, f"{time.time():.6f}", self.maximum, SLOTS_TTL_S],
                )
            )
        except LimiterBusy:
            self.limits.note_busy("sockets")
            raise SocketCapUnavailable("limiter busy") from None
        except LimiterDown as down:
            self._outage.began_named("redis", str(down) or "just failed")
            raise SocketCapUnavailable("Redis unreachable") from None
        self._outage.ended()
        return [item.decode() if isinstance(item, bytes) else str(item) for item in evicted]

    async def release(self, account: str, connection_id: str) -> None:
        try:
            await self.limits.run(partial(self.limits.redis.zrem, self.key(account), connection_id))
        except (LimiterBusy, LimiterDown):  # an entry left behind is the oldest, gives way first
            logger.debug("could not release socket slot %s", connection_id)
