"""Bearer tokens: opaque, random, stored only as their SHA-256; and who the caller is.

Tokens are 256 random bits, so a fast hash is enough (there is nothing to brute-force, unlike a
password). Domain packages turn a `Principal` into their own account (see
`drivers.dependencies`); this module knows no domain table.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from pydantic import BaseModel
from sqlalchemy import DateTime, Enum, LargeBinary, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dispatch.core.db import Base, SessionDep, utcnow
from dispatch.core.errors import Forbidden, Unauthorized
from dispatch.core.state import CoreState, state_of


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


@dataclass(frozen=True)
class Principal:
    role: Role
    subject_id: uuid.UUID | None  # None for the admin, who is no account


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


async def issue_token(*, session: AsyncSession, role: Role, subject_id: uuid.UUID) -> str:
    """Creates a token for an account; only its hash is kept. The caller commits."""
    token = new_token()
    session.add(AuthToken(token_hash=hash_token(token), role=role, subject_id=subject_id))
    return token


async def resolve(*, session: AsyncSession, token: str, admin_token: str) -> Principal | None:
    if not token:
        return None
    digest = hash_token(token)
    if hmac.compare_digest(digest, hash_token(admin_token)):
        return Principal(role=Role.admin, subject_id=None)
    row = await session.scalar(select(AuthToken).where(AuthToken.token_hash == digest))
    if row is None:
        return None
    return Principal(role=row.role, subject_id=row.subject_id)


def bearer_from_headers(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def get_principal(request: Request, session: SessionDep) -> Principal:
    token = bearer_from_headers(request.headers.get("authorization"))
    principal = await resolve(
        session=session,
        token=token or "",
        admin_token=state_of(request.app, CoreState).settings.admin_token,
    )
    if principal is None:
        raise Unauthorized(
            "Send 'Authorization: Bearer <token>' with a valid token"
            if token is None
            else "The token is not valid"
        )
    return principal


async def websocket_principal(websocket: WebSocket, session: AsyncSession) -> Principal | None:
    """The caller of a WebSocket, from the Authorization header or `?token=`."""
    token = bearer_from_headers(
        websocket.headers.get("authorization")
    ) or websocket.query_params.get("token")
    return await resolve(
        session=session,
        token=token or "",
        admin_token=state_of(websocket.app, CoreState).settings.admin_token,
    )


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        wanted = " or ".join(role.value for role in roles)
        raise Forbidden(f"This needs a {wanted} account")


async def get_admin(principal: CurrentPrincipal) -> Principal:
    require_role(principal, Role.admin)
    return principal


Admin = Annotated[Principal, Depends(get_admin)]
