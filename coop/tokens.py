"""Tokens over HTTP: minting, listing and revoking the caller's, and an operator revoking an
account's.

`POST /v1/tokens` mints a new token for the same account, in the caller's family (an admin's is a
personal admin token, see `coop.auth`); it is also how a token is renewed before it expires.
`GET /v1/tokens` lists the account's live tokens, without secrets. `DELETE /v1/tokens/current`
revokes the caller's token and what it minted; `DELETE /v1/tokens` revokes all of the account's
and answers a replacement; `DELETE /v1/accounts/{account_id}/tokens` is the operator's, audited.
A revoked token is refused at once over HTTP, and every worker closes the sockets opened with it
(code 4001).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coop import audit, pubsub
from coop.auth import (
    Admin,
    AuthToken,
    CurrentPrincipal,
    Principal,
    Role,
    TokenIssued,
    effective_expiry,
    is_live,
    issue_token,
    revoke_families,
)
from coop.db import utcnow
from coop.dependencies import SessionDep
from coop.errors import Forbidden
from coop.push import service as push_service
from coop.redis_client import Redis

logger = logging.getLogger("coop.tokens")

router = APIRouter(tags=["tokens"])

CLOSE_TOKEN_REVOKED = 4001
AUDIT_KIND_REVOKED = "account_tokens_revoked"


class TokenOut(BaseModel):
    """One of the account's tokens, as its owner sees it: never the token, nor its hash."""

    id: uuid.UUID
    role: Role
    created_at: datetime
    expires_at: datetime | None
    current: bool = Field(description="The token this request was made with")
    minted_by: uuid.UUID | None = Field(
        description="The id of the token this one was minted with (revoking it revokes this one)"
    )


class TokensReset(BaseModel):
    """What revoking all of one's tokens answers: how many, and the one token left."""

    revoked: int
    replacement: TokenIssued


class AccountTokensRevoked(BaseModel):
    revoked: int
    audit_seq: int = Field(description="The audit log entry recording the revocation")


def _forbid_bootstrap(principal: Principal) -> None:
    if principal.bootstrap:
        raise Forbidden(
            "The bootstrap admin token is not revoked here: change COOP_ADMIN_TOKEN (which also "
            "revokes the personal admin tokens it minted), or issue a personal admin token "
            "(POST /v1/tokens), after which it expires"
        )


async def _mint(
    request: Request, session: AsyncSession, principal: Principal, *, parent_hash: bytes | None
) -> TokenIssued:
    settings = request.app.state.settings
    now = utcnow()
    subject_id = principal.subject_id or uuid.uuid4()
    expires_at = (
        now + timedelta(days=settings.token_ttl_days)
        if settings.token_ttl_days is not None
        else None
    )
    token = await issue_token(
        session=session,
        role=principal.role,
        subject_id=subject_id,
        expires_at=expires_at,
        parent_hash=parent_hash,
        fingerprint=principal.family_fingerprint if principal.role is Role.admin else None,
    )
    if principal.role is Role.admin:
        logger.info("personal admin token issued", extra={"admin_id": str(subject_id)})
    return TokenIssued(token=token, role=principal.role, created_at=now, expires_at=expires_at)


async def _announce(request: Request, revoked: list[bytes]) -> None:
    await announce(request.app.state.redis, revoked)


async def announce(redis: Redis, revoked: list[bytes]) -> None:
    """Tells every worker's hub to close the sockets opened with these tokens."""
    try:
        for token_hash in revoked:
            await pubsub.token_revoked(redis, token_hash.hex())
    except Exception:  # the tokens are refused anyway; their sockets close when the hub hears it
        logger.warning("could not announce a token revocation to the sockets", exc_info=True)


@router.post("/v1/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenIssued)
async def issue(request: Request, principal: CurrentPrincipal, session: SessionDep) -> TokenIssued:
    """A new token for the caller's account, minted with the caller's (revoking that one revokes
    this one too); how a token is renewed before it expires. With the bootstrap admin token: a
    personal admin token, a day after which the bootstrap token stops working
    (docs/security.md)."""
    parent = None if principal.bootstrap else bytes.fromhex(principal.token_key)
    issued = await _mint(request, session, principal, parent_hash=parent)
    await session.commit()
    return issued


@router.get("/v1/tokens", response_model=list[TokenOut])
async def list_own(
    request: Request, principal: CurrentPrincipal, session: SessionDep
) -> list[TokenOut]:
    """The caller's account's live tokens (not revoked, not expired), oldest first."""
    if principal.bootstrap:
        raise Forbidden("The bootstrap admin token is no account; it has no tokens to list")
    settings = request.app.state.settings
    now = utcnow()
    rows = list(
        await session.scalars(
            select(AuthToken)
            .where(AuthToken.subject_id == principal.subject_id, AuthToken.revoked_at.is_(None))
            .order_by(AuthToken.created_at, AuthToken.id)
        )
    )
    ids = {row.token_hash: row.id for row in rows}
    parents = [row.parent_hash for row in rows if row.parent_hash and row.parent_hash not in ids]
    if parents:
        found = await session.execute(
            select(AuthToken.token_hash, AuthToken.id).where(AuthToken.token_hash.in_(parents))
        )
        ids.update(dict(found.tuples().all()))
    return [
        TokenOut(
            id=row.id,
            role=row.role,
            created_at=row.created_at,
            expires_at=effective_expiry(row, settings),
            current=row.token_hash.hex() == principal.token_key,
            minted_by=ids.get(row.parent_hash) if row.parent_hash else None,
        )
        for row in rows
        if is_live(row, settings, now)
    ]


@router.delete(
    "/v1/tokens/current",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={204: {"description": "Revoked: refused from now on, its sockets closed (4001)"}},
)
async def revoke_current(
    request: Request, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """Revokes the token of this request and every token minted with it: `401` from now on, and
    every socket opened with them is closed with code 4001 on whichever worker holds it."""
    _forbid_bootstrap(principal)
    revoked = await revoke_families(
        session=session, roots=[bytes.fromhex(principal.token_key)], now=utcnow()
    )
    await push_service.forget_tokens(session=session, token_hashes=revoked)
    await session.commit()
    await _announce(request, revoked)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/v1/tokens", response_model=TokensReset)
async def revoke_all_own(
    request: Request, principal: CurrentPrincipal, session: SessionDep
) -> TokensReset:
    """Revokes every token of the caller's account, the one in use included, and answers one
    new token, the root of a new family: the way out when a token may have been stolen (the
    thief's tokens, whatever they minted, all die; an account with no token left could not be
    reached again)."""
    _forbid_bootstrap(principal)
    revoked = await _revoke_account(session, principal.subject_id)
    await push_service.forget_tokens(session=session, token_hashes=revoked)
    replacement = await _mint(request, session, principal, parent_hash=None)
    await session.commit()
    await _announce(request, revoked)
    return TokensReset(revoked=len(revoked), replacement=replacement)


@router.delete("/v1/accounts/{account_id}/tokens", response_model=AccountTokensRevoked)
async def revoke_account_tokens(
    account_id: uuid.UUID, request: Request, admin: Admin, session: SessionDep
) -> AccountTokensRevoked:
    """An operator revokes every token of an account (a rider, a driver or a personal admin),
    recorded in the audit log; the account's sockets are closed (4001). Its owner gets a new
    token as an account's first one is got (a driver's from the operator)."""
    return await revoke_account(
        session=session, redis=request.app.state.redis, account_id=account_id, admin=admin
    )


async def revoke_account(
    *, session: AsyncSession, redis: Redis, account_id: uuid.UUID, admin: Principal
) -> AccountTokensRevoked:
    """An operator revokes every token of an account, for the API and the operators' page:
    audited (naming no one), its devices forgotten, its sockets closed on every worker."""
    revoked = await _revoke_account(session, account_id)
    await push_service.forget_tokens(session=session, token_hashes=revoked)
    # The public log names neither the account nor the operator (docs/audit.md): the operators'
    # own log line below joins the entry's seq to both.
    entry = await audit.append(
        session=session,
        kind=AUDIT_KIND_REVOKED,
        subject=f"token_revocation:{uuid.uuid4()}",
        content={"tokens": len(revoked)},
    )
    await session.commit()
    logger.info(
        "an account's tokens revoked by an operator",
        extra={
            "audit_seq": entry.seq,
            "account_id": str(account_id),
            "admin_id": str(admin.subject_id or "bootstrap"),
            "tokens": len(revoked),
        },
    )
    await announce(redis, revoked)
    return AccountTokensRevoked(revoked=len(revoked), audit_seq=entry.seq)


async def _revoke_account(session: AsyncSession, subject_id: uuid.UUID | None) -> list[bytes]:
    roots = list(
        await session.scalars(
            select(AuthToken.token_hash).where(
                AuthToken.subject_id == subject_id, AuthToken.revoked_at.is_(None)
            )
        )
    )
    return await revoke_families(session=session, roots=roots, now=utcnow())
