"""Signing in to the pages with a passkey, adding and removing passkeys on /me, and the one-time
recovery link's page (coop/passkeys.py, coop/recovery.py).

The two WebAuthn ceremonies are JSON between the page's script (static/passkeys.js) and these
routes, under the same CSRF rule as every form (the `X-CSRF-Token` header); a refusal is a
problem document the script shows. The recovery link is a page with a button: following the
link only shows it, so a link preview cannot spend it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from coop import passkeys, recovery
from coop.clock import Now
from coop.dependencies import SessionDep
from coop.errors import ProblemError
from coop.state import CoreState, state_of
from server.web import sessions
from server.web.pages.common import (
    ViewerDep,
    check_csrf,
    counted_viewer,
    page_router,
    require_signed_in,
)
from server.web.pages.signin import safe_next
from server.web.rendering import Viewer, render

router = page_router()
# The ceremonies' JSON routes: refusals as problem documents, for the page's script.
ceremonies = APIRouter(include_in_schema=False, dependencies=[Depends(counted_viewer)])


class SignInAnswer(BaseModel):
    ceremony: str = Field(max_length=64)
    credential: dict[str, Any]
    next: str = Field(default="/", max_length=2000)


class Registration(BaseModel):
    ceremony: str = Field(max_length=64)
    credential: dict[str, Any]
    name: str = Field(default="", max_length=60)


class CsrfRefused(ProblemError):
    status = 403
    type = "csrf"
    title = "This page has expired"
    detail = "Reload the page and try again."


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _rp(request: Request) -> passkeys.RelyingParty:
    return passkeys.relying_party(state_of(request.app, CoreState).settings, _origin(request))


def _csrf(request: Request) -> None:
    if not sessions.csrf_ok(request, None):
        raise CsrfRefused()


@ceremonies.post("/signin/passkey/options")
async def sign_in_options(request: Request) -> dict[str, Any]:
    _csrf(request)
    redis = state_of(request.app, CoreState).redis
    return await passkeys.authentication_options(redis=redis, rp=_rp(request))


@ceremonies.post("/signin/passkey")
async def sign_in(
    answer: SignInAnswer, request: Request, session: SessionDep, now: Now
) -> Response:
    _csrf(request)
    core = state_of(request.app, CoreState)
    _principal, digest = await passkeys.sign_in(
        session=session,
        redis=core.redis,
        rp=_rp(request),
        ceremony=answer.ceremony,
        credential=answer.credential,
        now=now,
    )
    response = JSONResponse({"next": safe_next(answer.next)})
    # The session first: if Redis cannot keep it, nothing is committed (the counter included).
    await sessions.start(
        redis=core.redis,
        settings=core.settings,
        token_digest=digest,
        response=response,
        request=request,
    )
    await session.commit()
    return response


@ceremonies.post("/me/passkeys/options")
async def register_options(
    request: Request, viewer: ViewerDep, session: SessionDep
) -> dict[str, Any]:
    _csrf(request)
    principal = require_signed_in(viewer)
    redis = state_of(request.app, CoreState).redis
    return await passkeys.registration_options(
        session=session,
        redis=redis,
        rp=_rp(request),
        principal=principal,
        label=viewer.name or principal.role.value,
    )


@ceremonies.post("/me/passkeys", status_code=201)
async def register(
    registration: Registration, request: Request, viewer: ViewerDep, session: SessionDep, now: Now
) -> dict[str, str]:
    _csrf(request)
    principal = require_signed_in(viewer)
    key = await passkeys.register(
        session=session,
        redis=state_of(request.app, CoreState).redis,
        rp=_rp(request),
        principal=principal,
        ceremony=registration.ceremony,
        credential=registration.credential,
        name=registration.name,
        now=now,
    )
    await session.commit()
    return {"id": str(key.id)}


@router.post("/me/passkeys/{passkey_id}/delete")
async def remove(
    passkey_id: uuid.UUID,
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    check_csrf(request, csrf)
    principal = require_signed_in(viewer)
    await passkeys.remove(session=session, principal=principal, passkey_id=passkey_id)
    await session.commit()
    return RedirectResponse("/me#passkeys", status_code=303)


@router.get("/recover/{token}", response_class=HTMLResponse)
async def recover_page(token: str, request: Request, viewer: ViewerDep) -> Response:
    return render(request, "recover.html", viewer, token=token[:100], error=None)


@router.post("/recover/{token}", response_class=HTMLResponse)
async def recover(
    token: str,
    request: Request,
    session: SessionDep,
    now: Now,
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    check_csrf(request, csrf)
    core = state_of(request.app, CoreState)
    try:
        _principal, digest = await recovery.redeem(session=session, token=token, now=now)
    except recovery.LinkRefused:
        await session.rollback()
        return render(request, "recover.html", Viewer(), status_code=404, token="", error="refused")
    response = RedirectResponse("/me?recovered=1#passkeys", status_code=303)
    # The session first: if Redis cannot keep it, the link is not spent (nothing committed).
    try:
        await sessions.start(
            redis=core.redis,
            settings=core.settings,
            token_digest=digest,
            response=response,
            request=request,
        )
    except (RedisError, OSError):
        await session.rollback()
        return render(
            request,
            "recover.html",
            Viewer(),
            status_code=503,
            token=token[:100],
            error="unavailable",
        )
    await session.commit()
    return response
