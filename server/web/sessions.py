"""Signing in to the pages: a token typed once becomes a session cookie; forms carry a CSRF token.

- The session cookie holds a random id (256 bits). Redis keeps, under the id's SHA-256, only the
  SHA-256 of the member's token: neither the token nor the cookie's id is stored anywhere. Every
  page request checks that digest exactly as the API checks a bearer token
  (`coop.auth.resolve_digest`), so a token the API refuses (unknown, revoked, expired)
  signs the page session out too.
- The cookie is HttpOnly, SameSite=Lax, Secure when the page was served over HTTPS, and the
  session ends after `COOP_WEB_SESSION_IDLE_S` unused or when the person signs out.
- CSRF: a signed-in visitor's forms carry a value derived from their session id (a hash of it:
  it names the session without revealing its id), so it is tied to the session: a value planted
  in a cookie, or taken from another session, does not pass. Before signing in, every page sets
  a `coop_csrf` cookie (random, HttpOnly) and the forms carry the same value. Scripts send it as
  `X-CSRF-Token`. A POST whose value is not the expected one, or whose `Origin` is another
  site, is refused. The value changes at sign-in and sign-out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from coop.auth import Principal, resolve_digest
from coop.redis_client import Redis
from coop.settings import Settings

SESSION_COOKIE = "coop_session"
CSRF_COOKIE = "coop_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
_KEY_PREFIX = "coop:web:session:"


def _key(session_id: str) -> str:
    return _KEY_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        secure=is_https(request),
        samesite="lax",
        path="/",
    )


@dataclass(frozen=True)
class PageSession:
    session_id: str
    principal: Principal


async def start(
    *, redis: Redis, settings: Settings, token_digest: bytes, response: Response, request: Request
) -> None:
    """Opens a session for a checked token and sets its cookie (and a fresh CSRF value)."""
    session_id = secrets.token_urlsafe(32)
    await redis.set(
        _key(session_id),
        json.dumps({"token_sha256": token_digest.hex()}),
        ex=settings.web_session_idle_s,
    )
    set_cookie(response, request, SESSION_COOKIE, session_id, settings.web_session_idle_s)
    set_cookie(response, request, CSRF_COOKIE, secrets.token_urlsafe(32), 365 * 86400)


async def end(*, redis: Redis, request: Request, response: Response) -> None:
    """Signs out: the session is deleted on the server, its cookie cleared, CSRF renewed."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await redis.delete(_key(session_id))
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    set_cookie(response, request, CSRF_COOKIE, secrets.token_urlsafe(32), 365 * 86400)


async def current(
    *,
    request: Request,
    redis: Redis,
    session: AsyncSession,
    settings: Settings,
    touch: bool = True,
) -> PageSession | None:
    """Who is signed in on this request, checked against the tokens now, or None. Each request
    restarts the session's idle time (`touch`), except the pages of a vote: the session's
    expiry, under a key that leads to the member's token, would record when they voted."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id or len(session_id) > 128:
        return None
    key = _key(session_id)
    try:
        raw = await redis.get(key)
    except (RedisError, OSError):
        return None  # without Redis no one is signed in; the public pages still work
    if raw is None:
        return None
    try:
        digest = bytes.fromhex(json.loads(raw)["token_sha256"])
    except (ValueError, KeyError, TypeError):
        await redis.delete(key)
        return None
    principal = await resolve_digest(session=session, digest=digest, settings=settings)
    if principal is None:  # the token was revoked or has expired since: the session ends
        await redis.delete(key)
        return None
    if touch:
        await redis.expire(key, settings.web_session_idle_s)
    return PageSession(session_id=session_id, principal=principal)


def _session_id(request: Request) -> str | None:
    session_id = request.cookies.get(SESSION_COOKIE)
    return session_id if session_id and len(session_id) <= 128 else None


def _session_csrf(session_id: str) -> str:
    """The CSRF value of a page session: computable only by whoever holds the session's id."""
    digest = hashlib.sha256(b"coop web csrf\0" + session_id.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_value(request: Request) -> str:
    """The CSRF value for this page's forms: the session's own when signed in; otherwise the
    cookie's (a new one if the browser has none yet)."""
    session_id = _session_id(request)
    if session_id is not None:
        return _session_csrf(session_id)
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 128:
        return existing
    fresh: str | None = getattr(request.state, "new_csrf", None)
    if fresh is None:
        fresh = secrets.token_urlsafe(32)
        request.state.new_csrf = fresh
    return fresh


def remember_csrf(request: Request, response: Response) -> None:
    """Sets the CSRF cookie when this page handed out a new value."""
    fresh: str | None = getattr(request.state, "new_csrf", None)
    if fresh is not None and CSRF_COOKIE not in response.headers.get("set-cookie", ""):
        set_cookie(response, request, CSRF_COOKIE, fresh, 365 * 86400)


def csrf_ok(request: Request, submitted: str | None) -> bool:
    """A state-changing request is the service's own page's: same-site origin and the form's
    (or header's) CSRF value equal to the session's (signed in) or else to the cookie's. A
    cookie alone can be planted by a neighbouring site; the session's id cannot be guessed."""
    origin = request.headers.get("origin")
    if origin:
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin != own:
            return False
    submitted = submitted or request.headers.get(CSRF_HEADER)
    session_id = _session_id(request)
    expected = (
        _session_csrf(session_id) if session_id is not None else request.cookies.get(CSRF_COOKIE)
    )
    if not expected or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())
