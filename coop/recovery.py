"""Getting back in after losing a token and every passkey: an operator, having checked the person
outside the software (in person, by a phone call to the number on file), issues a one-time
sign-in link. It expires after LINK_TTL and works once; issuing it and using it are both in the
audit log, and the person sees on their own page every link issued for their account
(docs/security.md, "Passkeys and recovery").

`POST /v1/accounts/{account_id}/recovery-link` (operators) answers the link; `/recover/{token}`
(a page: a button, so that a link preview cannot spend it) signs the person in."""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import datetime, timedelta

from fastapi import APIRouter, Request, status
from pydantic import BaseModel
from sqlalchemy import DateTime, Enum, LargeBinary, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from coop import audit
from coop.auth import Admin, Principal, Role, hash_token, issue_token
from coop.clock import Now
from coop.db import Base
from coop.dependencies import SessionDep
from coop.errors import ProblemError
from coop.passkeys import SESSION_TOKEN_TTL, account_role
from coop.state import CoreState, state_of

logger = logging.getLogger("coop.recovery")

router = APIRouter(tags=["tokens"])

LINK_TTL = timedelta(minutes=15)
AUDIT_KIND_ISSUED = "recovery_link_issued"
AUDIT_KIND_USED = "recovery_link_used"


class RecoveryLink(Base):
    __tablename__ = "recovery_link"

    # Only the link's hash is kept: a database reader cannot sign in with it.
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    role: Mapped[Role] = mapped_column(Enum(Role, name="auth_role"))
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True)
    issued_by: Mapped[uuid.UUID | None] = mapped_column()  # None: the bootstrap admin
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class AccountNotFound(ProblemError):
    status = 404
    type = "account_not_found"
    title = "No such account"
    detail = "No account has this id."


class RecoveryLinkOut(BaseModel):
    """A one-time sign-in link: give it to the person only, by a channel you checked."""

    url: str
    expires_at: datetime
    audit_seq: int


@router.post(
    "/v1/accounts/{account_id}/recovery-link",
    response_model=RecoveryLinkOut,
    status_code=status.HTTP_201_CREATED,
)
async def issue_link(
    account_id: uuid.UUID, request: Request, admin: Admin, session: SessionDep, now: Now
) -> RecoveryLinkOut:
    """An operator issues a one-time sign-in link for an account (15 minutes, once), after
    checking the person outside the software. Audited; the person sees it on their page."""
    # The address people's browsers use, where it is set (behind a proxy, the request's is not).
    settings = state_of(request.app, CoreState).settings
    base = settings.web_origin or str(request.base_url)
    return await issue(session=session, account_id=account_id, admin=admin, now=now, base_url=base)


async def issue(
    *, session: AsyncSession, account_id: uuid.UUID, admin: Principal, now: datetime, base_url: str
) -> RecoveryLinkOut:
    """Issues a one-time sign-in link for an account, for the API and the operators' page:
    only its hash is kept, it is audited (naming no one), and the operators' log joins the
    entry to the account and the operator."""
    role = await account_role(session, account_id)
    if role is None:
        raise AccountNotFound()
    token = secrets.token_urlsafe(32)
    expires_at = now + LINK_TTL
    session.add(
        RecoveryLink(
            token_hash=hash_token(token),
            role=role,
            subject_id=account_id,
            issued_by=admin.subject_id,
            issued_at=now,
            expires_at=expires_at,
        )
    )
    # The public log names neither the account nor the operator (docs/audit.md).
    entry = await audit.append(
        session=session,
        kind=AUDIT_KIND_ISSUED,
        subject=f"recovery_link:{uuid.uuid4()}",
        content={"expires_in_s": int(LINK_TTL.total_seconds())},
        at=now,
    )
    await session.commit()
    logger.info(
        "a recovery link issued by an operator",
        extra={
            "audit_seq": entry.seq,
            "account_id": str(account_id),
            "admin_id": str(admin.subject_id or "bootstrap"),
        },
    )
    return RecoveryLinkOut(
        url=f"{base_url.rstrip('/')}/recover/{token}", expires_at=expires_at, audit_seq=entry.seq
    )


async def redeem(*, session: AsyncSession, token: str, now: datetime) -> tuple[Principal, bytes]:
    """Spends a link (once: the update is conditional, so two tabs cannot both use it) and
    mints the token of the page session it opens; None-like refusal for a link that is unknown,
    used or expired alike (no oracle). The caller commits."""
    if not token or len(token) > 100:
        raise LinkRefused()
    spent = (
        await session.execute(
            update(RecoveryLink)
            .where(
                RecoveryLink.token_hash == hash_token(token),
                RecoveryLink.used_at.is_(None),
                RecoveryLink.expires_at > now,
            )
            .values(used_at=now)
            .returning(RecoveryLink.role, RecoveryLink.subject_id)
        )
    ).first()
    if spent is None:
        raise LinkRefused()
    role, subject_id = spent
    await audit.append(
        session=session,
        kind=AUDIT_KIND_USED,
        subject=f"recovery_link:{uuid.uuid4()}",
        content={},
        at=now,
    )
    minted = await issue_token(
        session=session, role=role, subject_id=subject_id, expires_at=now + SESSION_TOKEN_TTL
    )
    digest = hash_token(minted)
    return Principal(role=role, subject_id=subject_id, token_key=digest.hex()), digest


class LinkRefused(ProblemError):
    status = 404
    type = "recovery_link_refused"
    title = "This sign-in link does not work"
    detail = "It was used already, it expired, or it never existed: ask the co-op for a new one."


async def issued_for(
    *, session: AsyncSession, principal: Principal, since: datetime
) -> list[RecoveryLink]:
    """The links issued for the person's account since `since`: shown on their own page, so an
    operator cannot sign in as someone unseen."""
    found = await session.scalars(
        select(RecoveryLink)
        .where(RecoveryLink.subject_id == principal.subject_id, RecoveryLink.issued_at >= since)
        .order_by(RecoveryLink.issued_at.desc())
    )
    return list(found)
