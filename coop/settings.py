"""The service's settings, read from `COOP_*` environment variables (see the README's table)."""

from __future__ import annotations

import ipaddress
import math
import zlib
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from coop import jurisdiction
from coop.jurisdiction import DEFAULT_JURISDICTION
from coop.keys import MIN_KEY_CHARS, MIN_KEY_DISTINCT_CHARS

# The kernel's package folder; its `data/` holds the shipped service areas.
PACKAGE_DIR = Path(__file__).resolve().parent
DEV_ADMIN_TOKEN = "dev-admin-token-change-me"
MIN_ADMIN_TOKEN_CHARS = MIN_KEY_CHARS
# The least estimated entropy of a production admin token (`estimated_entropy_bits`): 16 random
# bytes in hex (`openssl rand -hex 16`) estimate at about 94 bits or more; `abab...`, a repeated
# word or a run like `abcdef...` far below.
MIN_ADMIN_TOKEN_ENTROPY_BITS = 80
# COOP_METER_TIME_SCALE's range: real time (1) up to the fastest demo clock.
METER_TIME_SCALE_RANGE = (1.0, 100.0)


def _default_data_dir() -> Path:
    return Path(".var").absolute()


class Settings(BaseSettings):
    """Every knob of the service; the agreement's terms are not here, they are voted on."""

    model_config = SettingsConfigDict(env_prefix="COOP_", extra="ignore")

    env: Literal["dev", "test", "production"] = "dev"
    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str = ""
    redis_url: str = ""
    admin_token: str = DEV_ADMIN_TOKEN
    # The service's origin as people's browsers see it (`https://coop.example`): passkeys are
    # bound to it (coop/passkeys.py). Unset: the request's own origin in development and tests;
    # in production, passkeys are off until it is set.
    web_origin: str = ""
    # The secret of the raters' pseudonyms (reputation/pseudonym.py); required in production,
    # generated under data_dir/keys/ elsewhere (coop.keys).
    pseudonym_key: SecretStr | None = None
    service_area: Path = PACKAGE_DIR / "data" / "montreal.geojson"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True
    db_pool_size: int = 10
    db_max_overflow: int = 20
    # Background work (matcher, automatic closes, expiries); tests drive them explicitly.
    background_tasks: bool = True
    # Realtime dispatch (docs/dispatch.md). The agreement's dispatch terms (batch interval, offer
    # timeout, pickup radius, max wait, fairness weight) are not here: they are voted on.
    # A driver whose socket has been silent this long is no longer offered trips.
    driver_grace_s: float = Field(default=25.0, gt=0)
    # The server sends {"type": "ping"} this often, and it refreshes the driver's presence.
    ws_ping_interval_s: float = Field(default=10.0, gt=0)
    # Frames waiting for a slow client; beyond this the socket is closed with code 4008.
    ws_send_queue_size: int = Field(default=256, ge=1)
    # The largest frame a client may send, in bytes; a bigger one gets a bad_message error frame
    # (up to `ws_transport_max_bytes`, beyond which the server closes the socket with 1009).
    ws_max_frame_bytes: int = Field(default=4096, ge=256)
    # Buffered driver positions are written to PostGIS this often, one statement per flush.
    location_flush_interval_ms: int = Field(default=250, ge=10)
    # While flushes fall behind, shed the location frames of the busiest sockets (an
    # `overloaded` error frame) so flushes keep completing; off only to measure without it.
    location_backpressure: bool = True
    # The region this worker matches (one matcher leader per region across all workers).
    matcher_region: str = Field(default="montreal", min_length=1, max_length=64)
    # The K of the nearest-neighbour search within the pickup radius: drivers per request, or
    # requests per driver when requests outnumber drivers.
    matcher_candidates_k: int = Field(default=8, ge=1, le=100)
    # Early batches (between full ones, every `dispatch.min_batch_interval_ms`) run only while at
    # most this many requests are open; 0 turns them off.
    matcher_early_max_requests: int = Field(default=50, ge=0)
    # The cyclic garbage collector in `serve` (dispatch/realtime/pauses.py, docs/performance.md):
    # record its pauses and the event loop's lag as metrics; freeze what start-up allocated; and
    # its thresholds as gc.set_threshold takes them. With Python's defaults ('[700, 10, 10]')
    # 10,000 sockets meant a full collection of 1-2 s every ten seconds or so under load; with a
    # young generation of 50,000 objects the steady stream of short-lived frames never triggers
    # one, and the last number keeps the garbage of closed sockets from piling up.
    gc_stats: bool = False
    # Keys the HMAC of each member's ballot under a per-proposal key (bargaining.secrecy);
    # required in production, generated under data_dir/keys/ elsewhere (coop.keys).
    ballot_key: SecretStr | None = None
    gc_freeze: bool = True
    gc_thresholds: tuple[int, int, int] | None = (50_000, 10, 1)
    # Abuse limits (docs/security.md). Rate limits are `limits` strings ("20/hour", "120/minute",
    # "10 per second"), counted in Redis so that they hold across workers; the admin is exempt.
    # Account creation per client address (an IPv6 address counts by its /64).
    signup_limit: str = "20/hour"
    # Account creation for the whole service, whatever the addresses: the ceiling that holds
    # when someone rotates through many addresses.
    signup_global_limit: str = "60/minute"
    # Requests per account on every authenticated route and page (all of the account's tokens
    # and page sessions together).
    api_limit: str = "120/minute"
    # Requests without an account (public routes, pages not signed in) per client address.
    anonymous_limit: str = "120/minute"
    # Shared-trip links (`/v1/shared/{token}`, its stream, `/t/{token}`) opened per client
    # address, on top of the line above: a link is 144 random bits, so guessing is hopeless, and
    # this keeps trying from costing the service anything.
    share_limit: str = "60/minute"
    # Links that do not open (never existed, revoked, expired) per client address: past it,
    # every link is refused to that address for the rest of the window.
    share_miss_limit: str = "30/hour"
    # The limiter's own Redis connections per worker, and so its commands in flight; a burst
    # beyond them waits its turn (coop/ratelimit.py), never exhausts the pool.
    rate_limit_redis_connections: int = Field(default=50, ge=1, le=1000)
    # A member's ballot requests (casting and reading their own) per account and UTC day,
    # counted apart from COOP_API_LIMIT so that no record keeps their moment (coop.ratelimit).
    ballot_requests_per_day: int = Field(default=200, ge=1)
    # Open WebSockets per account; one more closes the oldest with code 4009.
    ws_max_per_account: int = Field(default=3, ge=1, le=100)
    # The addresses (or networks) of the reverse proxies whose X-Forwarded-For is believed.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Where /metrics and the detail of /readyz may be read from without the admin token.
    metrics_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"]
    )
    # The largest request body read, in bytes; a larger one is 413, unread.
    max_body_bytes: int = Field(default=65536, ge=1024)
    # Days a token lasts from its creation (riders', drivers' and personal admins'); renewed by
    # minting a fresh one with it (POST /v1/tokens). None: until revoked, which leaves a stolen
    # token good for ever, so not the default.
    token_ttl_days: float | None = Field(default=30.0, gt=0)
    # The web pages (server/web, docs/web.md). The operations map's base layer: a tile URL
    # template such as `https://tiles.example/{z}/{x}/{y}.png`; empty, the map shows the service
    # area and the points on a plain background (no request leaves the service).
    map_tiles_url: str = ""
    map_tiles_attribution: str = ""
    # Times on the pages are shown in this zone (the service area's).
    time_zone: str = "America/Toronto"
    # A page session (after signing in with a token) lasts this long without being used.
    web_session_idle_s: int = Field(default=12 * 3600, ge=60)
    # The demo's sped-up clock: the service counts this many seconds for every real second of
    # a ride, so a simulated city running 8 times faster is paid its simulated minutes, and its
    # cars are believed at the agreement's plausible speed in simulated time (the meter and the
    # position checks both read this clock). `make demo` sets it to the simulator's speed-up;
    # nothing else does. Always 1 in production (refused otherwise).
    meter_time_scale: float = Field(
        default=1.0, ge=METER_TIME_SCALE_RANGE[0], le=METER_TIME_SCALE_RANGE[1]
    )
    # The law where the co-op runs: a profile in coop/data/jurisdictions (docs/jurisdiction.md).
    jurisdiction: str = DEFAULT_JURISDICTION
    # The co-op's registration number for each of the profile's sales taxes, printed on
    # receipts: `gst=123456789RT0001,qst=1234567890TQ0001` (by the profile's tax codes).
    tax_registrations: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # The municipalities the co-op serves (a GeoJSON FeatureCollection, each feature with a
    # `name`), for the regulator's annual report by origin and destination; unset, no such report.
    municipalities: Path | None = None
    # The cap the co-op's authorization sets on cars available or on a trip at once (drivers
    # beyond it wait in line); unset, the jurisdiction profile's (none for Québec).
    max_cars_in_service: int | None = Field(default=None, ge=1)
    # High availability (docs/deployment.md): the Redis Sentinels as `host:port` (comma
    # separated) and the name they know the master by. Set, the pub/sub hub asks them for the
    # current master and follows a failover; empty, Redis is COOP_REDIS_URL alone.
    redis_sentinels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_sentinel_master: str = "coop"
    # Web Push (coop/push, docs/push.md). The VAPID key pair that signs every push (RFC 8292):
    # the private key as the base64url of its 32 bytes, or a PEM; required in production,
    # generated under data_dir/keys/ elsewhere. The subject is how a push service reaches the
    # co-op's operators (`mailto:` or `https:`); required in production.
    vapid_private_key: SecretStr | None = None
    vapid_subject: str = ""
    # Pushes waiting for the sender; beyond this a new one is dropped and counted (never waited
    # for: the matcher hands offers over and goes on).
    push_queue_size: int = Field(default=10_000, ge=1)
    # Deliveries in flight at once (each to one device).
    push_concurrency: int = Field(default=32, ge=1, le=1000)
    # Accept `http:` and loopback push endpoints: the tests' push service. Refused in
    # production, where an endpoint is an `https` URL on a public host.
    push_allow_loopback: bool = False

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _sentinel_list(cls, value: Any) -> Any:
        """Comma-separated in the environment: `10.77.0.11:26379,10.77.0.12:26379`."""
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        for item in value:
            host, _, port = str(item).rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"COOP_REDIS_SENTINELS: {item!r} is not host:port")
        return value

    @property
    def ws_transport_max_bytes(self) -> int:
        """The WebSocket server's own message limit (uvicorn's `ws_max_size`): a little above
        `ws_max_frame_bytes`, so a frame just over it still gets a bad_message error frame,
        while a huge one is refused as soon as its length is known, unread (close code 1009)."""
        return max(self.ws_max_frame_bytes * 2, 65536)

    @field_validator("tax_registrations", mode="before")
    @classmethod
    def _registrations(cls, value: Any) -> Any:
        """`gst=123456789RT0001,qst=1234567890TQ0001` in the environment; empty for none."""
        if isinstance(value, str):
            pairs = [item.strip() for item in value.split(",") if item.strip()]
            if any("=" not in pair for pair in pairs):
                raise ValueError("write each registration as code=number, comma-separated")
            split = [pair.split("=", 1) for pair in pairs]
            return {code.strip(): number.strip() for code, number in split}
        return value

    @field_validator("trusted_proxies", "metrics_allow", mode="before")
    @classmethod
    def _address_list(cls, value: Any) -> Any:
        """Comma-separated in the environment: `10.0.0.1,10.0.1.0/24`; empty for none."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _derive_and_check(self) -> Settings:
        data_dir = self.data_dir.absolute()
        self.data_dir = data_dir
        if not self.database_url:
            self.database_url = f"postgresql+asyncpg://coop@/coop?host={(data_dir / 'pg')}"
        if not self.redis_url:
            self.redis_url = f"unix://{data_dir / 'redis' / 'redis.sock'}"
        if self.env == "production" and self.meter_time_scale != 1.0:
            raise ValueError("COOP_METER_TIME_SCALE is for the demo; production meters real time")
        if self.env == "production":
            problem = weak_admin_token(self.admin_token)
            if problem is not None:
                raise ValueError(f"COOP_ADMIN_TOKEN {problem} in production")
        for name in (
            "signup_limit",
            "signup_global_limit",
            "api_limit",
            "anonymous_limit",
            "share_limit",
            "share_miss_limit",
        ):
            value = getattr(self, name)
            try:
                parse_many(value)
            except ValueError as exc:
                raise ValueError(f"COOP_{name.upper()}: {value!r} is not a rate limit") from exc
        for name in ("trusted_proxies", "metrics_allow"):
            for network in getattr(self, name):
                try:
                    ipaddress.ip_network(network, strict=False)
                except ValueError as exc:
                    raise ValueError(f"COOP_{name.upper()}: {network!r} is not an address") from exc
        if (
            self.pseudonym_key is not None
            and self.pseudonym_key.get_secret_value() == self.admin_token
        ):
            raise ValueError("COOP_PSEUDONYM_KEY must be a secret of its own, not COOP_ADMIN_TOKEN")
        try:
            profile = jurisdiction.load(self.jurisdiction)
        except jurisdiction.UnknownJurisdiction as exc:
            raise ValueError(f"COOP_JURISDICTION: {exc}") from exc
        problem = jurisdiction.registration_problem(
            profile, self.tax_registrations, required=self.env == "production"
        )
        if problem is not None:
            raise ValueError(f"COOP_TAX_REGISTRATIONS: {problem}")
        # The VAPID key and subject are checked where they are loaded (coop.push.vapid).
        if self.env == "production" and self.push_allow_loopback:
            raise ValueError("COOP_PUSH_ALLOW_LOOPBACK is for tests; never in production")
        if self.ws_ping_interval_s >= self.driver_grace_s:
            raise ValueError(
                "COOP_WS_PING_INTERVAL_S must be shorter than COOP_DRIVER_GRACE_S, or connected "
                "drivers would drop out of dispatch between two pings"
            )
        return self


def weak_admin_token(token: str) -> str | None:
    """Why a bootstrap admin token is not fit for production, or None."""
    if token == DEV_ADMIN_TOKEN:
        return "is the development default"
    if len(token) < MIN_ADMIN_TOKEN_CHARS:
        return f"must be at least {MIN_ADMIN_TOKEN_CHARS} characters"
    if len(set(token)) == 1:
        return "must not be one repeated character"
    if len(set(token)) < MIN_KEY_DISTINCT_CHARS:
        return f"must have at least {MIN_KEY_DISTINCT_CHARS} different characters"
    if estimated_entropy_bits(token) < MIN_ADMIN_TOKEN_ENTROPY_BITS:
        return (
            "is too predictable (a repeated pattern or a run); use a random one, such as "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return None


def estimated_entropy_bits(secret: str) -> float:
    """A rough upper bound of a secret's entropy, on the safe side for patterns: the least of
    its characters' Shannon entropy (counts every character once), its deflated length times
    the bits of its alphabet (sees a repeated pattern) and the Shannon entropy of its steps
    between neighbours (sees a run such as `abcdef` or `13579`). A random secret scores about
    its true entropy on all three."""
    steps = [ord(after) - ord(before) for before, after in zip(secret, secret[1:], strict=False)]
    deflated_bytes = max(0, len(zlib.compress(secret.encode(), 9)) - _DEFLATED_EMPTY_BYTES)
    deflated_bits = deflated_bytes * math.log2(max(len(set(secret)), 1))
    return min(_shannon_bits(secret), deflated_bits, _shannon_bits(steps))


_DEFLATED_EMPTY_BYTES = len(zlib.compress(b"", 9))


def _shannon_bits(symbols: Sequence[object]) -> float:
    total = len(symbols)
    return -sum(n * math.log2(n / total) for n in Counter(symbols).values())


@lru_cache
def get_settings() -> Settings:
    return Settings()
