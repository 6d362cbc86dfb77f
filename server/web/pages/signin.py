"""Choosing a language, signing in with a member's token and signing out."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from redis.exceptions import RedisError

from coop.auth import hash_token, resolve_digest
from coop.dependencies import SessionDep
from coop.state import CoreState, state_of
from server.web import sessions
from server.web.pages.common import (
    ViewerDep,
    check_csrf,
    counted_viewer,
    page_router,
)
from server.web.rendering import Viewer, render, translate

router = page_router()


# --- language, sign-in, sign-out -------------------------------------------------------------


def safe_next(target: str | None) -> str:
    """Only a path of this site: never `//elsewhere` or a full URL."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/lang/{language}")
async def switch_language(language: str, request: Request, next: str = "/") -> Response:
    from server.web.i18n import LANGUAGE_COOKIE, LANGUAGES

    response = RedirectResponse(safe_next(next), status_code=303)
    if language in LANGUAGES:
        sessions.set_cookie(response, request, LANGUAGE_COOKIE, language, 365 * 86400)
    return response


@router.get("/signin", response_class=HTMLResponse)
async def signin_form(request: Request, viewer: ViewerDep, next: str = "/") -> Response:
    return render(request, "signin.html", viewer, next=safe_next(next), error=None)


@router.post("/signin", response_class=HTMLResponse, dependencies=[Depends(counted_viewer)])
async def signin(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Form(max_length=512)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    check_csrf(request, csrf)
    core = state_of(request.app, CoreState)
    settings = core.settings
    digest = hash_token(token.strip())
    principal = (
        await resolve_digest(session=session, digest=digest, settings=settings)
        if token.strip()
        else None
    )
    if principal is None:
        return render(
            request,
            "signin.html",
            Viewer(),
            status_code=401,
            next=safe_next(next),
            error=translate(request, "This token is not valid. Check it and try again."),
        )
    response = RedirectResponse(safe_next(next), status_code=303)
    try:
        await sessions.start(
            redis=core.redis,
            settings=settings,
            token_digest=digest,
            response=response,
            request=request,
        )
    except (RedisError, OSError):
        return render(
            request,
            "signin.html",
            Viewer(),
            status_code=503,
            next=safe_next(next),
            error=translate(request, "Signing in is not possible right now. Try again shortly."),
        )
    return response


@router.post("/signout")
async def signout(request: Request, csrf: Annotated[str, Form(max_length=256)] = "") -> Response:
    check_csrf(request, csrf)
    response = RedirectResponse("/", status_code=303)
    try:
        redis = state_of(request.app, CoreState).redis
        await sessions.end(redis=redis, request=request, response=response)
    except (RedisError, OSError):
        response.delete_cookie(sessions.SESSION_COOKIE, path="/")
    return response
