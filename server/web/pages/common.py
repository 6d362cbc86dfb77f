"""What every page shares: who is looking (counted like an API caller), refusals shown as
pages, the form's CSRF check, and the pagers of a page's lists."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from coop.auth import Principal, Role
from coop.clients import client_host
from coop.dependencies import SessionDep
from coop.errors import ProblemError, field_errors
from coop.state import CoreState, state_of
from drivers.dependencies import get_current_driver
from drivers.models import Driver
from riders.models import Rider
from server.web import sessions
from server.web.i18n import api_text
from server.web.pages.messages import N_, PROBLEM_MESSAGES, STATUS_MESSAGES
from server.web.rendering import Viewer, language_of, render, translate


class PageRoute(APIRoute):
    """Routes whose refusals are pages, not JSON: a `ProblemError` raised by a service (not
    signed in, not allowed, not found, too late...) is shown in the visitor's language."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except ProblemError as problem:
                page = render(
                    request,
                    "error.html",
                    getattr(request.state, "viewer", Viewer()),
                    status_code=problem.status,
                    problem=problem,
                    message=problem_message(request, problem),
                )
                page.headers.update(problem.headers)  # e.g. Retry-After on a 429
                return page

        return page_handler


def page_router() -> APIRouter:
    """A module's pages: refusals shown as pages, and none of them in the API's schema."""
    return APIRouter(route_class=PageRoute, include_in_schema=False)


# --- who is looking ---------------------------------------------------------------------------


async def load_viewer(request: Request, session: SessionDep) -> Viewer:
    return await _load_viewer(request, session, touch=True)


async def load_viewer_quietly(request: Request, session: SessionDep) -> Viewer:
    """The viewer of a vote's pages, whose session's idle time is not restarted (its expiry
    would date the ballot: `sessions.current`)."""
    return await _load_viewer(request, session, touch=False)


async def _load_viewer(request: Request, session: AsyncSession, *, touch: bool) -> Viewer:
    core = state_of(request.app, CoreState)
    page = await sessions.current(
        request=request, redis=core.redis, session=session, settings=core.settings, touch=touch
    )
    viewer = Viewer()
    if page is not None:
        viewer = await _viewer_for(page.principal, session)
    request.state.viewer = viewer
    return viewer


async def _viewer_for(principal: Principal, session: AsyncSession) -> Viewer:
    if principal.role is Role.driver:
        return Viewer(principal=principal, driver=await get_current_driver(principal, session))
    if principal.role is Role.rider:
        rider = await session.get(Rider, principal.subject_id)
        return Viewer(principal=principal, rider=rider)
    return Viewer(principal=principal)


async def counted_viewer(request: Request, session: SessionDep) -> Viewer:
    """The visitor, counted as the API counts its callers: a signed-in member's page requests
    against their account's `COOP_API_LIMIT`, with their API requests (the admin exempt), and
    anyone else's per client address (`COOP_ANONYMOUS_LIMIT`). A page does the work of the API
    routes it shows, so it is no way around their limit."""
    viewer = await load_viewer(request, session)
    await _count(request, viewer, ballot=False)
    return viewer


async def counted_viewer_quietly(request: Request, session: SessionDep) -> Viewer:
    """The viewer of a vote's pages: counted like the ballot routes, per day
    (`check_ballot`), never in the account's moving window, and its session's idle time is not
    restarted; either would keep the moment of a ballot under the voter's name."""
    viewer = await load_viewer_quietly(request, session)
    await _count(request, viewer, ballot=True)
    return viewer


async def _count(request: Request, viewer: Viewer, *, ballot: bool) -> None:
    limits = state_of(request.app, CoreState).rate_limits
    if viewer.principal is None:
        await limits.check_anonymous(client_host(request.scope))
    elif viewer.principal.role is not Role.admin:
        if ballot:
            await limits.check_ballot(viewer.principal.account)
        else:
            await limits.check_api(viewer.principal.account)


ViewerDep = Annotated[Viewer, Depends(counted_viewer)]
QuietViewerDep = Annotated[Viewer, Depends(counted_viewer_quietly)]


class NotSignedIn(ProblemError):
    status = 401
    type = "unauthorized"
    title = "Sign in to see this page"


class BadCsrf(ProblemError):
    status = 403
    type = "forbidden"
    title = "This form has expired; reload the page and try again"


def require_signed_in(viewer: Viewer) -> Principal:
    if viewer.principal is None:
        raise NotSignedIn()
    return viewer.principal


def check_csrf(request: Request, submitted: str | None) -> None:
    if not sessions.csrf_ok(request, submitted):
        raise BadCsrf()


def problem_message(request: Request, problem: ProblemError) -> str:
    if isinstance(problem, BadCsrf):
        return translate(request, "This form has expired; reload the page and try again.")
    if isinstance(problem, NotSignedIn):
        return translate(request, "Sign in with your token to see this page.")
    message = PROBLEM_MESSAGES.get(problem.type)
    if message:
        return translate(request, message)
    said = api_text(language_of(request), problem.detail)
    if said is not None:
        return said
    generic = STATUS_MESSAGES.get(problem.status, N_("This is not possible right now."))
    return translate(request, generic)


def reason_text(request: Request, reason: str) -> str:
    """A field's problem as the API wrote it, in the page's language (never English on a
    French page: a reason the catalogue does not know reads as a plain "not valid")."""
    said = api_text(language_of(request), reason)
    return said if said is not None else translate(request, "This value is not valid.")


def reasons_text(request: Request, exc: ValidationError) -> str:
    """A refused form's reasons, each in the page's language, in one line."""
    return "; ".join(reason_text(request, e["reason"]) for e in field_errors(exc.errors()))


# --- pagers ------------------------------------------------------------------------------------

# Rows per page of a list on a page; `?per_page=` (1-100) asks for another size.
PAGE_SIZE = 20
PAGE_SIZE_MAX = 100


@dataclass(frozen=True)
class Pager:
    """Links between the pages of one list of a page. The list's place is its own query
    parameter (`?ratings=<cursor>`): the API's opaque cursor (docs/protocol.md, "Paging"), so a
    list of a page pages exactly as the API's list does, and several lists of one page page
    independently. `n` is the page's number, for people."""

    name: str
    number: int
    next_url: str | None
    first_url: str | None


def page_size(request: Request) -> int:
    raw = request.query_params.get("per_page", "")
    return min(int(raw), PAGE_SIZE_MAX) if raw.isdigit() and int(raw) >= 1 else PAGE_SIZE


def page_cursor(request: Request, name: str) -> str | None:
    """The cursor of list `name` in the page's address (checked by the API's own paging)."""
    return request.query_params.get(name) or None


def pager(request: Request, name: str, next_cursor: str | None) -> Pager:
    """The pager of list `name`, whose page just read answered `next_cursor` (None: the last)."""
    number_raw = request.query_params.get(f"{name}_n", "")
    number = int(number_raw) if number_raw.isdigit() and page_cursor(request, name) else 1
    kept = [
        (key, value)
        for key, value in request.query_params.multi_items()
        if key not in {name, f"{name}_n"}
    ]
    path = request.url.path
    anchor = f"#{name}"
    next_url = None
    if next_cursor is not None:
        query = urlencode([*kept, (name, next_cursor), (f"{name}_n", str(number + 1))])
        next_url = f"{path}?{query}{anchor}"
    first_url = None
    if number > 1 or page_cursor(request, name):
        first_url = f"{path}?{urlencode(kept)}{anchor}" if kept else f"{path}{anchor}"
    return Pager(name=name, number=number, next_url=next_url, first_url=first_url)


def named_by_field(
    problems: list[dict[str, str]], say: Callable[[str], str] = str
) -> dict[str, str]:
    """The API's `[{field, reason}]` keyed by the form field that shows it: an item of a list
    (`terms.reputation.excluded_tags.1`) belongs to the list's one field, and the reason keeps
    the API's full name of what is wrong; `say` puts a reason in the page's language."""
    errors: dict[str, str] = {}
    for problem in problems:
        parts = problem["field"].split(".")
        while len(parts) > 1 and parts[-1].isdigit():
            parts.pop()
        field = ".".join(parts)
        reason = say(problem["reason"])
        if field != problem["field"]:
            reason = f"{problem['field']}: {reason}"
        errors[field] = f"{errors[field]}; {reason}" if field in errors else reason
    return errors


async def driver_of(viewer: Viewer, session: AsyncSession) -> Driver:
    """The signed-in driver (refused as the API refuses a caller who is not one)."""
    principal = require_signed_in(viewer)
    return await get_current_driver(principal, session)
