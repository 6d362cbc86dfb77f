"""The device registry: what an account registered, what it wants pushed, and where a push for
it goes. Plain functions over a session; the caller commits."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from coop.auth import AuthToken, Principal, Role
from coop.errors import Conflict, NotFound, UnprocessableEntity
from coop.push.message import AUTH_BYTES, P256DH_BYTES, Subscription
from coop.push.models import PushDevice, PushPreference
from coop.push.vapid import b64url_decode

# What may be pushed; each account chooses among them (`PUT /v1/push/preferences`).
Kind = Literal["offer", "trip", "safety", "appeal", "vote"]
KINDS: tuple[Kind, ...] = ("offer", "trip", "safety", "appeal", "vote")
# A phone, a tablet, a browser or two: more is a script, or a leak of endpoints.
MAX_DEVICES_PER_ACCOUNT = 5
Platform = Literal["web", "android", "ios"]
Language = Literal["fr", "en"]


class TooManyDevices(Conflict):
    type = "too_many_devices"
    title = "This account has registered as many devices as it may"


class BadPushEndpoint(UnprocessableEntity):
    type = "bad_push_endpoint"
    title = "The push endpoint is not a push service's URL"


class Keys(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p256dh: str = Field(min_length=80, max_length=100, pattern=r"^[A-Za-z0-9_-]+=*$")
    auth: str = Field(min_length=16, max_length=40, pattern=r"^[A-Za-z0-9_-]+=*$")

    @field_validator("p256dh")
    @classmethod
    def _point(cls, value: str) -> str:
        raw = b64url_decode(value.rstrip("="))
        if len(raw) != P256DH_BYTES or raw[0] != 4:
            raise ValueError("p256dh must be an uncompressed P-256 point (65 bytes, base64url)")
        return value.rstrip("=")

    @field_validator("auth")
    @classmethod
    def _secret(cls, value: str) -> str:
        if len(b64url_decode(value.rstrip("="))) != AUTH_BYTES:
            raise ValueError("auth must be 16 bytes, base64url")
        return value.rstrip("=")


class DeviceIn(BaseModel):
    """A push subscription as `PushSubscription.toJSON()` gives it, with the app's platform
    and language. Unknown members are refused."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(min_length=12, max_length=2048)
    keys: Keys
    platform: Platform = "web"
    language: Language = "fr"
    # `toJSON()` adds it; a push service's own expiry, unused (a 404/410 says it ended).
    expirationTime: int | None = None  # noqa: N815 (the browser's name)


class DeviceOut(BaseModel):
    """A device as its owner sees it; never the endpoint or the keys (capabilities)."""

    id: uuid.UUID
    platform: str
    language: str
    push_service: str  # the endpoint's host, for telling devices apart
    created_at: datetime
    last_pushed_at: datetime | None
    current_token: bool  # registered with the token of this request


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kinds: list[Kind] = Field(max_length=len(KINDS))


class PreferencesOut(BaseModel):
    kinds: list[Kind]
    available: list[Kind]


@dataclass(frozen=True)
class Target:
    """Where one push goes: a device and its keys, in its owner's language."""

    device_id: uuid.UUID
    subscription: Subscription
    language: str


def check_endpoint(endpoint: str, *, allow_loopback: bool) -> None:
    """An `https` URL on a public host and the default port: the service posts to it, so an
    endpoint must never point it at the co-op's own network (docs/security.md, "Push")."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as exc:
        raise BadPushEndpoint("The endpoint is not a URL") from exc
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password or parts.fragment:
        raise BadPushEndpoint("The endpoint must be a plain URL with a host")
    loopback = host == "localhost" or _is_address(host, loopback_only=True)
    if allow_loopback and loopback:
        if parts.scheme not in ("http", "https"):
            raise BadPushEndpoint("The endpoint must be an http(s) URL")
        return
    if parts.scheme != "https":
        raise BadPushEndpoint("The endpoint must be an https URL")
    if port not in (None, 443):
        raise BadPushEndpoint("The endpoint must use the https port")
    if (
        host == "localhost"
        or host.endswith((".localhost", ".local", ".internal"))
        or "." not in host
    ):
        raise BadPushEndpoint("The endpoint must be on a public host")
    if _is_address(host, loopback_only=False):
        raise BadPushEndpoint("The endpoint must name a host, not an address")


def _is_address(host: str, *, loopback_only: bool) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback if loopback_only else True


async def register(
    *, session: AsyncSession, principal: Principal, device: DeviceIn, now: datetime
) -> PushDevice:
    """Registers the subscription for the caller's account (the same endpoint again replaces its
    keys and owner: a browser that subscribes anew, or a phone passed to another account)."""
    assert principal.subject_id is not None
    count = await session.scalar(
        select(func.count())
        .select_from(PushDevice)
        .where(
            PushDevice.role == principal.role,
            PushDevice.subject_id == principal.subject_id,
            PushDevice.endpoint != device.endpoint,
        )
    )
    if (count or 0) >= MAX_DEVICES_PER_ACCOUNT:
        raise TooManyDevices(
            f"At most {MAX_DEVICES_PER_ACCOUNT} devices per account: remove one first",
            max_devices=MAX_DEVICES_PER_ACCOUNT,
        )
    values = {
        "role": principal.role,
        "subject_id": principal.subject_id,
        "token_hash": bytes.fromhex(principal.token_key),
        "p256dh": device.keys.p256dh,
        "auth": device.keys.auth,
        "platform": device.platform,
        "language": device.language,
        "created_at": now,
        "last_pushed_at": None,
    }
    statement = insert(PushDevice).values(id=uuid.uuid4(), endpoint=device.endpoint, **values)
    row = await session.scalar(
        statement.on_conflict_do_update(index_elements=[PushDevice.endpoint], set_=values)
        .returning(PushDevice)
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


def view(device: PushDevice, principal: Principal) -> DeviceOut:
    return DeviceOut(
        id=device.id,
        platform=device.platform,
        language=device.language,
        push_service=urlsplit(device.endpoint).hostname or "",
        created_at=device.created_at,
        last_pushed_at=device.last_pushed_at,
        current_token=device.token_hash.hex() == principal.token_key,
    )


async def devices_of(*, session: AsyncSession, principal: Principal) -> list[PushDevice]:
    return list(
        await session.scalars(
            select(PushDevice)
            .where(PushDevice.role == principal.role, PushDevice.subject_id == principal.subject_id)
            .order_by(PushDevice.created_at, PushDevice.id)
        )
    )


async def remove(*, session: AsyncSession, principal: Principal, device_id: uuid.UUID) -> None:
    """Removes one of the caller's devices; another account's is `404` (never `403`: whether a
    device id exists is nobody else's business)."""
    removed = await session.scalar(
        delete(PushDevice)
        .where(
            PushDevice.id == device_id,
            PushDevice.role == principal.role,
            PushDevice.subject_id == principal.subject_id,
        )
        .returning(PushDevice.id)
    )
    if removed is None:
        raise NotFound(f"No device {device_id} of yours")


async def forget_tokens(*, session: AsyncSession, token_hashes: list[bytes]) -> int:
    """Deletes the devices registered with these (revoked) tokens; answers how many."""
    if not token_hashes:
        return 0
    result = await session.execute(
        delete(PushDevice).where(PushDevice.token_hash.in_(token_hashes)).returning(PushDevice.id)
    )
    return len(result.all())


async def forget_device(*, session: AsyncSession, device_id: uuid.UUID) -> bool:
    """The push service said the subscription is gone (404/410)."""
    removed = await session.scalar(
        delete(PushDevice).where(PushDevice.id == device_id).returning(PushDevice.id)
    )
    return removed is not None


async def pushed(*, session: AsyncSession, device_ids: list[uuid.UUID], now: datetime) -> None:
    if device_ids:
        await session.execute(
            update(PushDevice).where(PushDevice.id.in_(device_ids)).values(last_pushed_at=now)
        )


async def preferences(*, session: AsyncSession, role: Role, subject_id: uuid.UUID) -> list[Kind]:
    row = await session.get(PushPreference, (role, subject_id))
    if row is None:
        return list(KINDS)
    return [kind for kind in KINDS if kind in row.kinds]


async def set_preferences(
    *, session: AsyncSession, role: Role, subject_id: uuid.UUID, kinds: list[Kind], now: datetime
) -> list[Kind]:
    chosen = [kind for kind in KINDS if kind in kinds]
    await session.execute(
        insert(PushPreference)
        .values(role=role, subject_id=subject_id, kinds=chosen, updated_at=now)
        .on_conflict_do_update(
            index_elements=[PushPreference.role, PushPreference.subject_id],
            set_={"kinds": chosen, "updated_at": now},
        )
    )
    return chosen


async def targets(
    *, session: AsyncSession, role: Role, subject_id: uuid.UUID, kind: Kind, now: datetime
) -> list[Target]:
    """The devices a push of `kind` for this account goes to: those registered with a token
    still live, if the account wants that kind."""
    wanted = await preferences(session=session, role=role, subject_id=subject_id)
    if kind not in wanted:
        return []
    rows = await session.execute(
        select(
            PushDevice.id,
            PushDevice.endpoint,
            PushDevice.p256dh,
            PushDevice.auth,
            PushDevice.language,
        )
        .join(AuthToken, AuthToken.token_hash == PushDevice.token_hash)
        .where(
            PushDevice.role == role,
            PushDevice.subject_id == subject_id,
            AuthToken.revoked_at.is_(None),
            or_(AuthToken.expires_at.is_(None), AuthToken.expires_at > now),
        )
    )
    return [
        Target(device_id, Subscription(endpoint, p256dh, auth), language)
        for device_id, endpoint, p256dh, auth, language in rows
    ]
