"""Tokens over HTTP: a fresh one for the caller's account, and revoking the one in use.

`POST /v1/tokens` issues a new token for the same account (an admin's is a personal admin
token, see `coop.auth`); `DELETE /v1/tokens/current` revokes the caller's token: it is
refused at once over HTTP, and every worker closes the sockets opened with it (code 4001).
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import update

from coop import pubsub
from coop.auth import AuthToken, CurrentPrincipal, Role, TokenIssued, issue_token
from coop.db import utcnow
from coop.dependencies import SessionDep
from coop.errors import Forbidden

logger = logging.getLogger("coop.tokens")

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])

CLOSE_TOKEN_REVOKED = 4001


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TokenIssued)
async def issue(request: Request, principal: CurrentPrincipal, session: SessionDep) -> TokenIssued:
    """A new token for the caller's account (the one in use stays valid until revoked). With
    the bootstrap admin token: a personal admin token, a day after which the bootstrap token
    stops working (docs/security.md)."""
    settings = request.app.state.settings
    now = utcnow()
    subject_id = principal.subject_id or uuid.uuid4()
    expires_at = (
        now + timedelta(days=settings.token_ttl_days)
        if settings.token_ttl_days is not None
        else None
    )
    token = await issue_token(
        session=session, role=principal.role, subject_id=subject_id, expires_at=expires_at
    )
    await session.commit()
    if principal.role is Role.admin:
        logger.info("personal admin token issued", extra={"admin_id": str(subject_id)})
    return TokenIssued(token=token, role=principal.role, created_at=now, expires_at=expires_at)


@router.delete(
    "/current",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={204: {"description": "Revoked: refused from now on, its sockets closed (4001)"}},
)
async def revoke_current(
    request: Request, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """Revokes the token of this request: `401` from now on, and every socket opened with it is
    closed with code 4001 on whichever worker holds it."""
    if principal.bootstrap:
        raise Forbidden(
            "The bootstrap admin token is not revoked here: change COOP_ADMIN_TOKEN, or issue a "
            "personal admin token (POST /v1/tokens), after which it expires"
        )
    await session.execute(
        update(AuthToken)
        .where(
            AuthToken.token_hash == bytes.fromhex(principal.token_key),
            AuthToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    await session.commit()
    try:
        await pubsub.token_revoked(request.app.state.redis, principal.token_key)
    except Exception:  # the token is refused anyway; its sockets close when the hub hears it
        logger.warning("could not announce a token revocation to the sockets", exc_info=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
