"""Bearer tokens: opaque, random, stored only as their SHA-256; and who the caller is.

Tokens are 256 random bits, so a fast hash is enough (there is nothing to brute-force, unlike a
password). Domain packages turn a `Principal` into their own account (see
`drivers.dependencies`); this module knows no domain table.

A token has a creation date and expires (`expires_at`, and `COOP_TOKEN_TTL_DAYS` counted from
its creation); `DELETE /v1/tokens/current` revokes it. Tokens form families: one minted with
another (`POST /v1/tokens`) records it as its parent, and revoking a token revokes every token
it minted, and theirs (`revoke_families`), so a stolen token's offspring die with it. The
bootstrap admin token (`COOP_ADMIN_TOKEN`) is no row: it is valid until *real admins exist*,
that is until a personal admin token (issued through `POST /v1/tokens` by an admin) has been
live for a day; from then on only personal admin tokens work, until none is left. The personal
admin tokens carry the fingerprint of the bootstrap token they descend from, and stop working
when it changes (docs/security.md).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import DateTime, Enum, LargeBinary, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from coop.clients import client_host
from coop.db import Base, utcnow
from coop.dependencies import SessionDep
from coop.errors import Forbidden, Unauthorized
from coop.state import CoreState, state_of

# Once a personal admin token has been live this long, the bootstrap token stops working.
BOOTSTRAP_GRACE = timedelta(days=1)


class AccountCreated(BaseModel):
    """What registering an account answers: its id and its first token (shown once)."""

    id: uuid.UUID
    token: str


class Role(enum.StrEnum):
    rider = "rider"
    driver = "driver"
    admin = "admin"


class AuthToken(Base):
    __tablename__ = "auth_token"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    role: Mapped[Role] = mapped_column(Enum(Role, name="auth_role"))
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # How its owner names the token (`GET /v1/tokens`): random, unrelated to the token.
    id: Mapped[uuid.UUID] = mapped_column(
        unique=True, default=uuid.uuid4, server_default=text("gen_random_uuid()")
    )
    # The token this one was minted with (`POST /v1/tokens`); None for an account's first token
    # and for those the bootstrap token minted.
    parent_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True, default=None)
    # An admin token descending from the bootstrap token: that token's `bootstrap_fingerprint`.
    bootstrap_fingerprint: Mapped[bytes | None] = mapped_column(LargeBinary(32), default=None)


class TokenIssued(BaseModel):
    """A new token (shown once), and its dates."""

    token: str
    role: Role
    created_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class Principal:
    role: Role
    subject_id: uuid.UUID | None  # None for the bootstrap admin, who is no account
    # The token's hash in hex: names the token (revocation, sockets) without being it.
    token_key: str = ""
    expires_at: datetime | None = None
    bootstrap: bool = False
    # The bootstrap fingerprint the token's family carries (admins only; `AuthToken`).
    family_fingerprint: bytes | None = None

    def seconds_left(self) -> float:
        """How long the token has to live, by the clock its expiry is checked against here."""
        if self.expires_at is None:
            return math.inf
        return (self.expires_at - utcnow()).total_seconds()

    @property
    def account(self) -> str:
        """The key of the account's limits: all its tokens together."""
        return f"{self.role.value}:{self.subject_id or 'bootstrap'}"


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def is_bootstrap_token(token: str, admin_token: str) -> bool:
    return hmac.compare_digest(hash_token(token), hash_token(admin_token))


def bootstrap_fingerprint(admin_token: str) -> bytes:
    """Names a bootstrap token in the rows of the admin tokens it minted; not its bearer hash,
    so the row cannot stand for the token anywhere a hash is looked up."""
    return hashlib.sha256(b"coop.bootstrap-fingerprint.v1\x00" + admin_token.encode()).digest()


async def issue_token(
    *,
    session: AsyncSession,
    role: Role,
    subject_id: uuid.UUID,
    expires_at: datetime | None = None,
    parent_hash: bytes | None = None,
    fingerprint: bytes | None = None,
) -> str:
    """Creates a token for an account; only its hash is kept. The caller commits."""
    token = new_token()
    session.add(
        AuthToken(
            token_hash=hash_token(token),
            role=role,
            subject_id=subject_id,
            created_at=utcnow(),
            expires_at=expires_at,
            parent_hash=parent_hash,
            bootstrap_fingerprint=fingerprint,
        )
    )
    return token


def _orphaned(row: AuthToken, settings: Any) -> bool:
    """Whether the token descends from a bootstrap token that is no longer the configured one."""
    fingerprint = row.bootstrap_fingerprint
    return fingerprint is not None and not hmac.compare_digest(
        fingerprint, bootstrap_fingerprint(settings.admin_token)
    )


def is_live(row: AuthToken, settings: Any, now: datetime) -> bool:
    """Not revoked, not expired, and not orphaned by a change of the bootstrap token."""
    if row.revoked_at is not None or _orphaned(row, settings):
        return False
    expires_at = effective_expiry(row, settings)
    return expires_at is None or expires_at > now


async def revoke_families(
    *, session: AsyncSession, roots: list[bytes], now: datetime
) -> list[bytes]:
    """Revokes these tokens and every token minted from them, however deep; answers the hashes
    revoked now (for their sockets). The caller commits."""
    if not roots:
        return []
    family = (
        select(AuthToken.token_hash)
        .where(AuthToken.token_hash.in_(roots))
        .cte("family", recursive=True)
    )
    family = family.union(
        select(AuthToken.token_hash).join(family, AuthToken.parent_hash == family.c.token_hash)
    )
    result = await session.execute(
        update(AuthToken)
        .where(
            AuthToken.token_hash.in_(select(family.c.token_hash)),
            AuthToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .returning(AuthToken.token_hash)
    )
    return list(result.scalars())


def effective_expiry(row: AuthToken, settings: Any) -> datetime | None:
    """The earlier of the token's own expiry and its creation plus `COOP_TOKEN_TTL_DAYS`
    (which so applies to tokens issued before it was set)."""
    candidates = [row.expires_at] if row.expires_at is not None else []
    if settings.token_ttl_days is not None:
        candidates.append(row.created_at + timedelta(days=settings.token_ttl_days))
    return min(candidates) if candidates else None


async def bootstrap_expires_at(
    session: AsyncSession, now: datetime, settings: Any
) -> datetime | None:
    """When the bootstrap token stops (stopped) working: a day after the oldest personal admin
    token still live was issued; None while there is none. Tokens of another bootstrap token
    are not live: after a change of `COOP_ADMIN_TOKEN` the new one works at once."""
    live = [
        AuthToken.role == Role.admin,
        AuthToken.revoked_at.is_(None),
        or_(AuthToken.expires_at.is_(None), AuthToken.expires_at > now),
        or_(
            AuthToken.bootstrap_fingerprint.is_(None),
            AuthToken.bootstrap_fingerprint == bootstrap_fingerprint(settings.admin_token),
        ),
    ]
    if settings.token_ttl_days is not None:  # as `effective_expiry`: dead tokens lock no one out
        live.append(AuthToken.created_at > now - timedelta(days=settings.token_ttl_days))
    oldest = await session.scalar(select(func.min(AuthToken.created_at)).where(*live))
    return None if oldest is None else oldest + BOOTSTRAP_GRACE


async def resolve(*, session: AsyncSession, token: str, settings: Any) -> Principal | None:
    """Who `token` is, or None if it is unknown, revoked or expired."""
    if not token:
        return None
    return await resolve_digest(session=session, digest=hash_token(token), settings=settings)


async def resolve_digest(
    *, session: AsyncSession, digest: bytes, settings: Any
) -> Principal | None:
    """Who holds the token with this SHA-256, or None if it is unknown, revoked or expired: the
    one check behind bearer tokens and the web pages' sessions (which keep only the digest), so
    both accept and refuse the same tokens."""
    now = utcnow()
    if hmac.compare_digest(digest, hash_token(settings.admin_token)):
        expires = await bootstrap_expires_at(session, now, settings)
        if expires is not None and expires <= now:
            return None
        return Principal(
            role=Role.admin,
            subject_id=None,
            token_key=digest.hex(),
            bootstrap=True,
            family_fingerprint=bootstrap_fingerprint(settings.admin_token),
        )
    row = await session.scalar(select(AuthToken).where(AuthToken.token_hash == digest))
    if row is None or not is_live(row, settings, now):
        return None
    return Principal(
        role=row.role,
        subject_id=row.subject_id,
        token_key=digest.hex(),
        expires_at=effective_expiry(row, settings),
        family_fingerprint=row.bootstrap_fingerprint,
    )


async def valid_token_keys(
    sessionmaker: async_sessionmaker[AsyncSession], token_keys: list[str], settings: Any
) -> set[str]:
    """Which of these token keys (hex hashes) are still valid: for open sockets, after a time
    when revocations could have been missed."""
    if not token_keys:
        return set()
    valid: set[str] = set()
    now = utcnow()
    bootstrap = hash_token(settings.admin_token).hex()
    async with sessionmaker() as session:
        if bootstrap in token_keys:
            expires = await bootstrap_expires_at(session, now, settings)
            if expires is None or expires > now:
                valid.add(bootstrap)
        rows = await session.scalars(
            select(AuthToken).where(
                AuthToken.token_hash.in_([bytes.fromhex(key) for key in token_keys]),
                AuthToken.revoked_at.is_(None),
            )
        )
        for row in rows:
            if is_live(row, settings, now):
                valid.add(row.token_hash.hex())
    return valid


def bearer_from_headers(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


# The OpenAPI security scheme (so /docs can "Authorize"); the header is read by
# `bearer_from_headers`, which also takes a lower-case scheme.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token from account creation or POST /v1/tokens, or the admin token",
)


async def get_principal(
    request: Request,
    session: SessionDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The caller, from its bearer token; counts the request against the account's rate limit
    (the admin is exempt)."""
    principal = await _caller(request, session)
    if principal.role is not Role.admin:
        await request.app.state.rate_limits.check_api(principal.account)
    return principal


async def get_ballot_principal(
    request: Request,
    session: SessionDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The caller of a route about their own ballot: counted per day (`check_ballot`), never in
    the account's moving window, which keeps each request's moment under the account's name and
    so would date the ballot (docs/agreement.md, "Ballot secrecy")."""
    principal = await _caller(request, session)
    if principal.role is not Role.admin:
        await request.app.state.rate_limits.check_ballot(principal.account)
    return principal


async def _caller(request: Request, session: AsyncSession) -> Principal:
    token = bearer_from_headers(request.headers.get("authorization"))
    principal = await resolve(
        session=session, token=token or "", settings=state_of(request.app, CoreState).settings
    )
    if principal is None:
        raise Unauthorized(
            "Send 'Authorization: Bearer <token>' with a valid token"
            if token is None
            else "The token is not valid (unknown, revoked or expired)"
        )
    request.state.principal = principal
    return principal


def websocket_token(websocket: WebSocket) -> str | None:
    """A socket's token, from the Authorization header or `?token=`."""
    return bearer_from_headers(websocket.headers.get("authorization")) or (
        websocket.query_params.get("token")
    )


async def websocket_principal(websocket: WebSocket, session: AsyncSession) -> Principal | None:
    """The caller of a WebSocket, from the Authorization header or `?token=`."""
    return await resolve(
        session=session,
        token=websocket_token(websocket) or "",
        settings=state_of(websocket.app, CoreState).settings,
    )


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
BallotPrincipal = Annotated[Principal, Depends(get_ballot_principal)]


def needs_principal(dependant: Any) -> bool:
    """Whether a route's dependencies include `get_principal` or `get_ballot_principal` (which
    count it per account, or per day for a ballot)."""
    return dependant.call in (get_principal, get_ballot_principal) or any(
        needs_principal(sub) for sub in dependant.dependencies
    )


async def count_public_request(request: Request, session: SessionDep) -> None:
    """Counts a request to a route that needs no token: with a valid token against its
    account's `COOP_API_LIMIT` (the admin exempt), otherwise per client address
    (`COOP_ANONYMOUS_LIMIT`), so a public route is never unlimited and a made-up token lifts
    nothing. Routes that need a token are counted by `get_principal` (or, for a ballot,
    `get_ballot_principal`) instead."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is not None and needs_principal(dependant):
        return
    limits = state_of(request.app, CoreState).rate_limits
    token = bearer_from_headers(request.headers.get("authorization"))
    if token:
        settings = state_of(request.app, CoreState).settings
        principal = await resolve(session=session, token=token, settings=settings)
        if principal is not None:
            if principal.role is not Role.admin:
                await limits.check_api(principal.account)
            return
    await limits.check_anonymous(client_host(request.scope))


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        wanted = " or ".join(role.value for role in roles)
        raise Forbidden(f"This needs a {wanted} account")


async def get_admin(principal: CurrentPrincipal) -> Principal:
    require_role(principal, Role.admin)
    return principal


Admin = Annotated[Principal, Depends(get_admin)]
