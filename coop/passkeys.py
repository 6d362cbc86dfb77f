"""Passkeys (WebAuthn): a person signs in to the pages with their phone's or computer's own key,
not a token to type (docs/security.md, "Passkeys and recovery").

The relying party's checks are the `webauthn` library's: the challenge, the origin, the RP ID,
the signature over the authenticator's data, and the signature counter. What is ours: a
challenge is random, kept in Redis for CHALLENGE_TTL_S under a ceremony id the page holds, and
used once (GETDEL); a credential belongs to one account; a sign-in whose counter does not move
forward (a cloned authenticator) is refused and recorded; a sign-in mints a token for the page
session only (its plaintext is never shown, so it cannot be used anywhere else), which "sign out
everywhere" revokes like any other.

The origin people's browsers use is `COOP_WEB_ORIGIN` (`https://coop.example`). Without it, in
development and tests the request's own origin is used; in production passkeys are off (a
reverse proxy's Host header is not an origin a credential may be bound to)."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import webauthn
from sqlalchemy import DateTime, Enum, Integer, LargeBinary, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from coop import audit
from coop.auth import AuthToken, Principal, Role, hash_token, issue_token
from coop.db import Base
from coop.errors import ProblemError
from coop.redis_client import Redis
from coop.settings import Settings

CHALLENGE_TTL_S = 300
# The most passkeys one account keeps (a phone, a computer, a spare key...).
MAX_PER_ACCOUNT = 10
# A page session opened with a passkey lasts at most this long, however active.
SESSION_TOKEN_TTL = timedelta(days=30)
_CHALLENGE_KEY = "coop:passkey:ceremony:"
RP_NAME = "Coop"


class Passkey(Base):
    __tablename__ = "passkey"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    role: Mapped[Role] = mapped_column(Enum(Role, name="auth_role"))
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(Integer)
    # How the person names it ("my phone"); shown on /me only.
    name: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class PasskeysOff(ProblemError):
    status = 503
    type = "passkeys_off"
    title = "Passkeys are not configured"
    detail = "This service has no COOP_WEB_ORIGIN: sign in with your token."


class CeremonyExpired(ProblemError):
    status = 400
    type = "passkey_ceremony_expired"
    title = "This passkey request has expired"
    detail = "Start again: a passkey request is valid for five minutes and once."


class PasskeyRefused(ProblemError):
    status = 401
    type = "passkey_refused"
    title = "This passkey was not accepted"
    detail = "Use a passkey registered for your account, or sign in with your token."


class TooManyPasskeys(ProblemError):
    status = 409
    type = "too_many_passkeys"
    title = "This account has as many passkeys as it may keep"
    detail = f"Remove one before adding another (at most {MAX_PER_ACCOUNT})."


@dataclass(frozen=True)
class RelyingParty:
    id: str  # the RP ID: the origin's host name
    origin: str


def relying_party(settings: Settings, request_origin: str) -> RelyingParty:
    origin = settings.web_origin or ("" if settings.env == "production" else request_origin)
    if not origin:
        raise PasskeysOff()
    host = urlsplit(origin).hostname
    if not host:
        raise PasskeysOff()
    return RelyingParty(id=host, origin=origin.rstrip("/"))


async def _remember(redis: Redis, content: dict[str, Any]) -> str:
    ceremony = secrets.token_urlsafe(24)
    await redis.set(_CHALLENGE_KEY + ceremony, json.dumps(content), ex=CHALLENGE_TTL_S)
    return ceremony


async def _recall(redis: Redis, ceremony: str, purpose: str) -> dict[str, Any]:
    if not ceremony or len(ceremony) > 64:
        raise CeremonyExpired()
    raw = await redis.getdel(_CHALLENGE_KEY + ceremony)
    if raw is None:
        raise CeremonyExpired()
    content: dict[str, Any] = json.loads(raw)
    if content.get("purpose") != purpose:
        raise CeremonyExpired()
    return content


async def mine(*, session: AsyncSession, principal: Principal) -> list[Passkey]:
    found = await session.scalars(
        select(Passkey)
        .where(Passkey.subject_id == principal.subject_id, Passkey.role == principal.role)
        .order_by(Passkey.created_at)
    )
    return list(found)


async def registration_options(
    *, session: AsyncSession, redis: Redis, rp: RelyingParty, principal: Principal, label: str
) -> dict[str, Any]:
    """The options the browser's `navigator.credentials.create` takes, and the ceremony id."""
    if principal.subject_id is None:
        raise PasskeyRefused()
    existing = await mine(session=session, principal=principal)
    if len(existing) >= MAX_PER_ACCOUNT:
        raise TooManyPasskeys()
    options = webauthn.generate_registration_options(
        rp_id=rp.id,
        rp_name=RP_NAME,
        user_id=principal.subject_id.bytes,
        user_name=label,
        user_display_name=label,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=key.credential_id) for key in existing
        ],
    )
    ceremony = await _remember(
        redis,
        {
            "purpose": "register",
            "challenge": bytes_to_base64url(options.challenge),
            "role": principal.role.value,
            "subject_id": str(principal.subject_id),
        },
    )
    return {"ceremony": ceremony, "publicKey": json.loads(webauthn.options_to_json(options))}


async def register(
    *,
    session: AsyncSession,
    redis: Redis,
    rp: RelyingParty,
    principal: Principal,
    ceremony: str,
    credential: dict[str, Any],
    name: str,
    now: datetime,
) -> Passkey:
    """Checks the browser's answer and keeps the credential for the account; the caller commits."""
    content = await _recall(redis, ceremony, "register")
    if content["subject_id"] != str(principal.subject_id) or content["role"] != principal.role:
        raise CeremonyExpired()
    try:
        verified = webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=webauthn.base64url_to_bytes(content["challenge"]),
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
        )
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
        raise PasskeyRefused() from exc
    taken = await session.scalar(
        select(Passkey.id).where(Passkey.credential_id == verified.credential_id)
    )
    if taken is not None:
        raise PasskeyRefused()
    assert principal.subject_id is not None
    key = Passkey(
        credential_id=verified.credential_id,
        role=principal.role,
        subject_id=principal.subject_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        name=(name.strip() or "passkey")[:60],
        created_at=now,
    )
    session.add(key)
    return key


async def remove(*, session: AsyncSession, principal: Principal, passkey_id: uuid.UUID) -> bool:
    key = await session.get(Passkey, passkey_id)
    if key is None or key.subject_id != principal.subject_id or key.role != principal.role:
        return False
    await session.delete(key)
    return True


async def authentication_options(*, redis: Redis, rp: RelyingParty) -> dict[str, Any]:
    """Options for `navigator.credentials.get` with no account named: the authenticator offers
    the passkeys it holds for this site (discoverable credentials)."""
    options = webauthn.generate_authentication_options(
        rp_id=rp.id, user_verification=UserVerificationRequirement.PREFERRED
    )
    ceremony = await _remember(
        redis, {"purpose": "sign_in", "challenge": bytes_to_base64url(options.challenge)}
    )
    return {"ceremony": ceremony, "publicKey": json.loads(webauthn.options_to_json(options))}


async def sign_in(
    *,
    session: AsyncSession,
    redis: Redis,
    rp: RelyingParty,
    ceremony: str,
    credential: dict[str, Any],
    now: datetime,
) -> tuple[Principal, bytes]:
    """Checks an assertion; answers the account and the digest of a new token for its page
    session (the caller commits and opens the session). A counter that did not move forward
    means two authenticators hold one key: refused, and recorded for the operators."""
    content = await _recall(redis, ceremony, "sign_in")
    try:
        raw_id = webauthn.base64url_to_bytes(str(credential["rawId"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise PasskeyRefused() from exc
    key = await session.scalar(
        select(Passkey).where(Passkey.credential_id == raw_id).with_for_update()
    )
    if key is None:
        raise PasskeyRefused()
    try:
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=webauthn.base64url_to_bytes(content["challenge"]),
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=key.public_key,
            credential_current_sign_count=key.sign_count,
        )
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as exc:
        if "sign count" in str(exc).lower():
            await audit.append(
                session=session,
                kind="passkey_counter_refused",
                subject=f"passkey:{key.id}",
                content={"stored": key.sign_count},
                at=now,
            )
            await session.commit()
        raise PasskeyRefused() from exc
    key.sign_count = verified.new_sign_count
    key.last_used_at = now
    token = await issue_token(
        session=session,
        role=key.role,
        subject_id=key.subject_id,
        expires_at=now + SESSION_TOKEN_TTL,
    )
    digest = hash_token(token)
    return Principal(role=key.role, subject_id=key.subject_id, token_key=digest.hex()), digest


async def account_role(session: AsyncSession, account_id: uuid.UUID) -> Role | None:
    """The role of an account, as its tokens (revoked ones too) say; None if it has none."""
    found: Role | None = await session.scalar(
        select(AuthToken.role)
        .where(AuthToken.subject_id == account_id)
        .order_by(AuthToken.created_at.desc())
        .limit(1)
    )
    return found
