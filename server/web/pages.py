"""The co-op's own pages: server-rendered, French and English, signed in with a member's token.

Composition only: every figure and every decision comes from the same service functions and
route functions the API uses (bargaining, reputation, trips), so a page can never show or allow
something the API would not. What a page adds is the form, the words and the layout.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import fares as fare_rules
from bargaining import router as bargaining_routes
from bargaining import service as bargaining_service
from bargaining.dependencies import ballot_master
from bargaining.exceptions import InvalidProposal
from bargaining.models import ProposalStatus
from bargaining.schemas import AgreementOut, BallotIn, ProposalCreate, ProposalOut
from bargaining.terms import terms_to_wire
from coop import audit, paging
from coop.auth import Principal, Role, hash_token, resolve_digest
from coop.clients import client_host
from coop.clock import Now
from coop.dependencies import SessionDep
from coop.errors import Forbidden, ProblemError, field_errors
from coop.state import CoreState, state_of
from dispatch.trips import figures
from dispatch.trips import service as trips_service
from dispatch.trips.models import Trip, TripStatus
from drivers.dependencies import get_committee_member, get_current_driver, get_reviewer
from drivers.models import Driver
from pay import router as pay_routes
from pay.exceptions import NoReceipt
from pay.schemas import ReceiptOut
from reputation import router as reputation_routes
from reputation import service as reputation_service
from reputation.dependencies import get_pseudonym_key
from reputation.exceptions import RatingNotFound
from reputation.schemas import AppealIn, DecisionIn
from reputation.tags import TAGS
from riders.models import Rider
from server.web import sessions
from server.web.i18n import api_text
from server.web.rendering import Viewer, environment, language_of, render, translate


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


router = APIRouter(route_class=PageRoute, include_in_schema=False)


# --- who is looking ---------------------------------------------------------------------------


async def load_viewer(request: Request, session: SessionDep) -> Viewer:
    return await _load_viewer(request, session, touch=True)


async def load_viewer_quietly(request: Request, session: SessionDep) -> Viewer:
    """The viewer of a vote's pages, whose session's idle time is not restarted (its expiry
    would date the ballot: `sessions.current`)."""
    return await _load_viewer(request, session, touch=False)


async def _load_viewer(request: Request, session: AsyncSession, *, touch: bool) -> Viewer:
    page = await sessions.current(
        request=request,
        redis=request.app.state.redis,
        session=session,
        settings=request.app.state.settings,
        touch=touch,
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


def N_(message: str) -> str:
    """Marks a message for the catalogue; it is translated where it is shown."""
    return message


EXCLUDED_REASONS = {
    "appeal_upheld": N_("removed on appeal"),
    "excluded_tags": N_("reasons outside the driver's control"),
    "beyond_window": N_("older than the counted window"),
}
OUTCOMES = {"rating_removed": N_("rating removed"), "rating_stands": N_("rating stands")}
FARE_CLASSES = (N_("standard"), N_("accessible"))
CHOICES = (N_("yes"), N_("no"), N_("abstain"))
TRIP_STATUSES = (
    N_("requested"),
    N_("assigned"),
    N_("arrived"),
    N_("in_progress"),
    N_("completed"),
    N_("cancelled"),
    N_("unfulfilled"),
)
environment.globals.update(
    excluded_reasons=EXCLUDED_REASONS,
    outcomes=OUTCOMES,
    tag_descriptions={tag.code: tag.description for tag in TAGS},
)

PROBLEM_MESSAGES = {
    "unauthorized": N_("Sign in with your token to see this page."),
    "forbidden": N_("Your account is not allowed to do this."),
    "not_found": N_("There is nothing at this address."),
    "proposal_not_found": N_("There is no such proposal."),
    "agreement_not_found": N_("There is no such version of the agreement."),
    "appeal_not_found": N_("There is no such appeal."),
    "rating_not_found": N_("There is no such rating."),
    "not_your_rating": N_("This rating is about another driver."),
    "already_appealed": N_("This rating has already been appealed."),
    "appeal_window_closed": N_("The time to appeal this rating has passed."),
    "appeal_already_decided": N_("Another reviewer has already decided this appeal."),
    "own_appeal": N_("You cannot decide your own appeal."),
    "voting_closed": N_("Voting on this proposal has closed."),
    "voting_open": N_("The vote is still open: it can be closed only after its closing time."),
    "not_eligible": N_("You were not on the roll of members when this vote opened."),
    "no_agreement_in_force": N_("No agreement is in force."),
    "trip_not_found": N_("There is no such trip."),
    "not_your_trip": N_("This trip is another person's."),
    "no_receipt": N_(
        "This trip has no receipt: it was neither completed nor cancelled with a fee."
    ),
    "pay_period_not_found": N_("There is no such pay period."),
    "not_a_period_start": N_("This date does not start a pay period."),
    "patronage_period_taken": N_("These days are already shared out by another dividend."),
    "invalid_proposal": N_("The proposal cannot be put to a vote: a field needs fixing."),
    "validation_error": N_("A value on this page is not valid."),
    "rate_limited": N_("Too many requests: wait a moment and try again."),
    "dependency_unavailable": N_(
        "The service cannot reach its database right now. Try again shortly."
    ),
    "unavailable": N_("The service is not available right now. Try again shortly."),
}
# By status, for a refusal the list above does not name.
STATUS_MESSAGES = {
    400: N_("This request is not valid."),
    401: N_("Sign in with your token to see this page."),
    403: N_("Your account is not allowed to do this."),
    404: N_("There is nothing at this address."),
    409: N_("This is not possible in the current state: reload the page to see it."),
    422: N_("A value on this page is not valid."),
    429: N_("Too many requests: wait a moment and try again."),
}

# pydantic's own English for a field it refuses, as the API sends it: marked here so the pages
# can say it in French (server.web.i18n.api_text matches the sentence to its template).
VALIDATION_MESSAGES = (
    N_("or"),  # between the choices of "Input should be 'yes', 'no' or 'abstain'"
    N_("Field required"),
    N_("Extra inputs are not permitted"),
    N_("Input should be a valid decimal"),
    N_("Input should be a finite number"),
    N_("Input should be a valid integer"),
    N_("Input should be a valid integer, unable to parse string as an integer"),
    N_("Input should be a valid number, unable to parse string as a number"),
    N_("Input should be a valid boolean, unable to interpret input"),
    N_("Input should be a valid string"),
    N_("Input should be a valid list"),
    N_("Input should be a valid dictionary"),
    N_("Input should be greater than or equal to {ge}"),
    N_("Input should be greater than {gt}"),
    N_("Input should be less than or equal to {le}"),
    N_("Input should be less than {lt}"),
    N_("Decimal input should have no more than {max_digits} digits in total"),
    N_("Decimal input should have no more than {decimal_places} decimal places"),
    N_("Decimal input should have no more than {whole_digits} digits before the decimal point"),
    N_("Input should be a valid datetime or date, {error}"),
    N_("Input should be a valid datetime, {error}"),
    N_("Input should be a valid date, {error}"),
    N_("Input should have timezone info"),
    N_("Input should be {expected}"),
    N_("String should match pattern '{pattern}'"),
    N_("String should have at most {max_length} characters"),
    N_("String should have at least {min_length} character"),
    N_("String should have at least {min_length} characters"),
    N_("List should have at most {max_length} items after validation, not {actual_length}"),
    N_("List should have at most {max_length} item after validation, not {actual_length}"),
    N_("List should have at least {min_length} item after validation, not {actual_length}"),
    N_("List should have at least {min_length} items after validation, not {actual_length}"),
)


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


# --- pagers ------------------------------------------------------------------------------------

# Rows per page of a list on a page; `?per_page=` (1-100) asks for another size.
PAGE_SIZE = 20
PAGE_SIZE_MAX = 100
# The most statements the API lists at once (GET /v1/drivers/me/statements?limit=).
STATEMENTS_MAX = 520


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


def next_of(response: Response) -> str | None:
    """The next page's cursor an API list function named (`X-Next-Cursor`)."""
    return response.headers.get("x-next-cursor")


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
    settings = request.app.state.settings
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
            redis=request.app.state.redis,
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
        await sessions.end(redis=request.app.state.redis, request=request, response=response)
    except (RedisError, OSError):
        response.delete_cookie(sessions.SESSION_COOKIE, path="/")
    return response


# --- home ------------------------------------------------------------------------------------


def local_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    local = now.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, viewer: ViewerDep, session: SessionDep, now: Now) -> Response:
    settings = request.app.state.settings
    agreement = AgreementOut.of(await bargaining_service.in_force(session=session, at=now))
    day = await figures.day_figures(
        session=session,
        since=local_midnight(now, ZoneInfo(settings.time_zone)),
        now=now,
        grace_s=settings.driver_grace_s,
    )
    report = await reputation_routes.ratings_report(
        session=session, policy_source=request.app.state.reputation_policy_source, now=now
    )
    return render(
        request,
        "home.html",
        viewer,
        agreement=agreement,
        day=day,
        appeals_open=report["appeals"]["open"],
    )


# --- the agreement ---------------------------------------------------------------------------


def _parse_decimal(text: str | None) -> Decimal | None:
    if text is None or not text.strip():
        return None
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


@router.get("/agreement", response_class=HTMLResponse)
async def agreement_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    now: Now,
    a: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    b: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    version: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    km: Annotated[str | None, Query(max_length=20)] = None,
    minutes: Annotated[str | None, Query(max_length=20)] = None,
    service_class: Annotated[str | None, Query(alias="class", max_length=32)] = None,
) -> Response:
    current = AgreementOut.of(await bargaining_service.in_force(session=session, at=now))
    versions = [
        AgreementOut.of(row) for row in await bargaining_service.list_versions(session=session)
    ]
    numbers = [v.version for v in versions]
    # The diff: any two versions; by default the one in force against the one before it.
    diff_a = a if a in numbers else max(1, current.version - 1)
    diff_b = b if b in numbers else current.version
    diff_rows = await bargaining_routes.diff_agreements(a=diff_a, b=diff_b, session=session)
    # The fare calculator.
    calc_version = version if version in numbers else current.version
    calc_terms = next(v for v in versions if v.version == calc_version).terms
    calc_class = service_class if service_class in calc_terms.fares else fare_rules.STANDARD
    calc_errors: dict[str, str] = {}
    fare = None
    distance_km = _parse_decimal(km) if km is not None else Decimal("5")
    duration_min = _parse_decimal(minutes) if minutes is not None else Decimal("15")
    if distance_km is None or not Decimal(0) <= distance_km <= Decimal(1000):
        calc_errors["km"] = translate(request, "Enter a distance from 0 to 1,000 km.")
    if duration_min is None or not Decimal(0) <= duration_min <= Decimal(1440):
        calc_errors["minutes"] = translate(request, "Enter a duration from 0 to 1,440 minutes.")
    if not calc_errors:
        assert distance_km is not None and duration_min is not None
        fare = fare_rules.price_trip(
            calc_terms,
            agreement_version=calc_version,
            service_class=calc_class,
            distance_m=int(distance_km * 1000),
            duration_s=int(duration_min * 60),
        )
    return render(
        request,
        "agreement.html",
        viewer,
        current=current,
        versions=list(reversed(versions)),
        diff_a=diff_a,
        diff_b=diff_b,
        diff_rows=diff_rows,
        calc_version=calc_version,
        calc_class=calc_class,
        calc_terms=calc_terms,
        km=km if km is not None else "5",
        minutes=minutes if minutes is not None else "15",
        calc_errors=calc_errors,
        fare=fare,
    )


# --- transparency ----------------------------------------------------------------------------


@router.get("/transparency", response_class=HTMLResponse)
async def transparency_page(
    request: Request, viewer: ViewerDep, session: SessionDep, now: Now
) -> Response:
    report = await reputation_routes.ratings_report(
        session=session, policy_source=request.app.state.reputation_policy_source, now=now
    )
    register = _register_in(language_of(request), await reputation_routes.data_register_report())
    # The newest entries on the page, a page at a time (`?audit=<cursor>` holds the seq below
    # which the page starts); the browser's check reads the whole chain from the API.
    size = page_size(request)
    cursor = page_cursor(request, "audit")
    before = None if cursor is None else paging.decode_cursor(cursor, "audit_newest", (int,))[0]
    found = await audit.latest_entries(session=session, limit=size + 1, before=before)
    entries, next_cursor = paging.page_of(found, size, lambda e: (e.seq,), "audit_newest")
    # Appeals past their deadline, the longest overdue first: when, never whose or why.
    overdue = await reputation_service.list_appeals(
        session=session, driver_id=None, status="overdue", now=now, limit=OVERDUE_SHOWN
    )
    ratings, appeals = report["ratings"], report["appeals"]
    star_rows = [
        (translate(request, "%(n)s stars", n=stars), count)
        for stars, count in sorted(ratings["distribution"].items(), reverse=True)
    ]
    excluded_rows = [
        (translate(request, EXCLUDED_REASONS[reason]), value["count"])
        for reason, value in ratings["excluded"].items()
    ]
    outcome_rows = [
        (translate(request, OUTCOMES[outcome]), count)
        for outcome, count in appeals["by_outcome"].items()
    ]
    return render(
        request,
        "transparency.html",
        viewer,
        report=report,
        register=register,
        entries=[
            {"when": entry.at, **audit.AuditEntryOut.of(entry).model_dump()} for entry in entries
        ],
        audit_pager=pager(request, "audit", next_cursor),
        overdue=[
            {"filed_at": a.filed_at, "due_by": a.due_by, "late_s": (now - a.due_by).total_seconds()}
            for a in overdue
        ],
        now=now,
        star_rows=star_rows,
        excluded_rows=excluded_rows,
        outcome_rows=outcome_rows,
    )


# The overdue appeals /transparency lists (the count of all of them is beside it).
OVERDUE_SHOWN = 20


def _register_in(language: str, register: dict[str, Any]) -> dict[str, Any]:
    """The data register (reputation.data_register, English like the API) in `language`."""

    def say(text: str) -> str:
        return api_text(language, text) or text

    return {
        **register,
        "statement": say(register["statement"]),
        "readers_note": say(register["readers_note"]),
        "kinds": [
            {
                **kind,
                "description": say(kind["description"]),
                "purpose": say(kind["purpose"]),
                "retention": say(kind["retention"]),
                "readers": [say(reader) for reader in kind["readers"]],
            }
            for kind in register["kinds"]
        ],
    }


# --- proposals --------------------------------------------------------------------------------


def term_fields(terms: dict[str, Any], prefix: str = "terms") -> list[tuple[str, Any]]:
    """Every leaf of the terms as (dotted name, value): one form field each."""
    fields: list[tuple[str, Any]] = []
    for key, value in terms.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            fields.extend(term_fields(value, name))
        else:
            fields.append((name, value))
    return fields


def form_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def terms_from_form(current: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    """The terms as the form wrote them, shaped like the agreement in force: whole numbers
    where it has whole numbers, lists where it has lists, text (decimal strings) elsewhere.
    Whatever cannot be read is passed on as typed, so the validation names its field."""

    def build(node: dict[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            name = f"{prefix}.{key}"
            if isinstance(value, dict):
                out[key] = build(value, name)
                continue
            raw = form.get(name, form_value(value)).strip()
            if isinstance(value, bool):
                out[key] = raw.lower() in {"true", "1", "yes", "on"}
            elif isinstance(value, int):
                try:
                    out[key] = int(raw)
                except ValueError:
                    out[key] = raw
            elif isinstance(value, list):
                out[key] = [item.strip() for item in raw.split(",") if item.strip()]
            elif value is None or name.endswith(".cap"):
                out[key] = raw or None
            else:
                out[key] = raw.replace(",", ".") if _looks_decimal(raw) else raw
        return out

    return build(current, "terms")


def _looks_decimal(raw: str) -> bool:
    return raw.count(",") == 1 and raw.replace(",", "").replace("-", "").isdigit()


def parse_local_time(raw: str, zone: ZoneInfo) -> datetime | str:
    """A `datetime-local` field (the service area's time) as an aware time, or the raw text."""
    raw = raw.strip()
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=zone)
    except ValueError:
        return raw


def local_input(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


async def _proposal_list_context(
    request: Request, session: AsyncSession, now: datetime
) -> dict[str, Any]:
    """Two lists, each paged on its own: the votes open now, and every vote, newest first."""
    context: dict[str, Any] = {}
    for name, status in (("open", ProposalStatus.open), ("votes", None)):
        response = Response()
        context[f"{name}_proposals"] = await bargaining_routes.list_proposals(
            request=request,
            response=response,
            session=session,
            now=now,
            member=False,  # the pages show no dividend's lines
            status=status,
            limit=page_size(request),
            cursor=page_cursor(request, name),
        )
        context[f"{name}_pager"] = pager(request, name, next_of(response))
    return context


@router.get("/proposals", response_class=HTMLResponse)
async def proposals_page(
    request: Request, viewer: ViewerDep, session: SessionDep, now: Now
) -> Response:
    current = AgreementOut.of(await bargaining_service.in_force(session=session, at=now))
    zone = ZoneInfo(request.app.state.settings.time_zone)
    draft = {
        "title": "",
        "rationale": "",
        "voting_closes_at": local_input(now + timedelta(days=7), zone),
        "effective_from": "",
        "fields": [
            (name, form_value(value)) for name, value in term_fields(terms_to_wire(current.terms))
        ],
    }
    return render(
        request,
        "proposals.html",
        viewer,
        current=current,
        draft=draft,
        errors={},
        preview=None,
        **await _proposal_list_context(request, session, now),
    )


@router.post("/proposals", response_class=HTMLResponse)
async def draft_proposal(
    request: Request, viewer: ViewerDep, session: SessionDep, now: Now
) -> Response:
    """The committee's draft: `action=preview` checks it and shows its diff and impact;
    `action=open` puts it to the vote (the same checks, then the API's own route)."""
    form = {key: str(value) for key, value in (await request.form()).items()}
    check_csrf(request, form.get("csrf"))
    member = await get_committee_member(await _driver_of(viewer, session))
    zone = ZoneInfo(request.app.state.settings.time_zone)
    current = AgreementOut.of(await bargaining_service.in_force(session=session, at=now))
    current_wire = terms_to_wire(current.terms)
    terms = terms_from_form(current_wire, form)
    effective_raw = form.get("effective_from", "").strip()
    body = {
        "title": form.get("title", ""),
        "rationale": form.get("rationale", ""),
        "terms": terms,
        "effective_from": parse_local_time(effective_raw, zone) if effective_raw else None,
        "voting_closes_at": parse_local_time(form.get("voting_closes_at", ""), zone),
    }
    draft = {
        "title": form.get("title", ""),
        "rationale": form.get("rationale", ""),
        "voting_closes_at": form.get("voting_closes_at", ""),
        "effective_from": effective_raw,
        "fields": [
            (name, form.get(name, form_value(value))) for name, value in term_fields(current_wire)
        ],
    }
    errors: dict[str, str] = {}
    preview = None
    try:
        proposal_in = ProposalCreate.model_validate(body)
        trips_source = request.app.state.completed_trips_source
        if form.get("action") == "open":
            opened: ProposalOut = await bargaining_routes.open_proposal(
                body=proposal_in,
                member=member,
                session=session,
                now=now,
                trips_source=trips_source,
                patronage_source=request.app.state.patronage_source,
            )
            return RedirectResponse(f"/proposals/{opened.id}", status_code=303)
        # The form always sends terms (a proposal of kind terms requires them to validate).
        assert proposal_in.terms is not None
        base, changes, impact = await bargaining_service.preview_proposal(
            session=session,
            terms=proposal_in.terms,
            effective_from=proposal_in.effective_from,
            voting_closes_at=proposal_in.voting_closes_at,
            now=now,
            trips_source=trips_source,
        )
        preview = {"base": base.version, "changes": changes, "impact": impact.to_wire()}
    except ValidationError as exc:
        errors = named_by_field(field_errors(exc.errors()), lambda r: reason_text(request, r))
    except InvalidProposal as exc:
        errors = named_by_field(exc.extra.get("errors", []), lambda r: reason_text(request, r))
    return render(
        request,
        "proposals.html",
        viewer,
        status_code=200,  # the page is fine; the form says what to fix
        current=current,
        draft=draft,
        errors=errors,
        preview=preview,
        **await _proposal_list_context(request, session, now),
    )


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


async def _driver_of(viewer: Viewer, session: AsyncSession) -> Any:
    principal = require_signed_in(viewer)
    return await get_current_driver(principal, session)


@router.get("/proposals/{proposal_id}", response_class=HTMLResponse)
async def proposal_page(
    proposal_id: uuid.UUID,
    request: Request,
    viewer: QuietViewerDep,
    session: SessionDep,
    now: Now,
    voted: bool = False,
) -> Response:
    proposal = await bargaining_routes.read_proposal(
        proposal_id=proposal_id, session=session, now=now, member=False
    )
    base = await bargaining_service.get_version(session=session, version=proposal.base_version)
    ballot = None
    if viewer.driver is not None:
        ballot = await bargaining_routes.read_own_ballot(
            proposal_id=proposal_id,
            driver=viewer.driver,
            session=session,
            master=ballot_master(request),
        )
    return render(
        request,
        "proposal.html",
        viewer,
        proposal=proposal,
        rules=base.terms.governance,
        ballot=ballot,
        voted=voted,
        now=now,
    )


@router.post("/proposals/{proposal_id}/ballot", response_class=HTMLResponse)
async def vote(
    proposal_id: uuid.UUID,
    request: Request,
    viewer: QuietViewerDep,
    session: SessionDep,
    now: Now,
    choice: Annotated[str, Form(max_length=16)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    check_csrf(request, csrf)
    driver = await _driver_of(viewer, session)
    try:
        ballot_in = BallotIn.model_validate({"choice": choice})
    except ValidationError:
        return RedirectResponse(f"/proposals/{proposal_id}", status_code=303)
    await bargaining_routes.cast_ballot(
        proposal_id=proposal_id,
        body=ballot_in,
        driver=driver,
        session=session,
        now=now,
        master=ballot_master(request),
    )
    return RedirectResponse(f"/proposals/{proposal_id}?voted=1", status_code=303)


@router.post("/proposals/{proposal_id}/close", response_class=HTMLResponse)
async def close_vote(
    proposal_id: uuid.UUID,
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    now: Now,
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    check_csrf(request, csrf)
    member = await get_committee_member(await _driver_of(viewer, session))
    await bargaining_routes.close_proposal(
        proposal_id=proposal_id, member=member, session=session, now=now
    )
    return RedirectResponse(f"/proposals/{proposal_id}", status_code=303)


# --- a member's own page ----------------------------------------------------------------------


@router.get("/me", response_class=HTMLResponse)
async def me_page(request: Request, viewer: ViewerDep, session: SessionDep, now: Now) -> Response:
    return await _me(request, viewer, session, now, appeal_errors={}, appeal_text={})


async def _me(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    now: datetime,
    *,
    appeal_errors: dict[str, str],
    appeal_text: dict[str, str],
    status_code: int = 200,
) -> Response:
    require_signed_in(viewer)
    context: dict[str, Any] = {"appeal_errors": appeal_errors, "appeal_text": appeal_text}
    policy_source = request.app.state.reputation_policy_source
    size = page_size(request)
    if viewer.driver is not None:
        key = get_pseudonym_key(request)
        response = Response()
        context["ratings"] = await reputation_routes.my_ratings(
            request=request,
            response=response,
            driver=viewer.driver,
            session=session,
            policy_source=policy_source,
            key=key,
            now=now,
            limit=size,
            cursor=page_cursor(request, "ratings"),
        )
        context["ratings_pager"] = pager(request, "ratings", next_of(response))
        context["reputation"] = await reputation_routes.my_reputation(
            driver=viewer.driver, session=session, policy_source=policy_source, now=now
        )
        context["support_cases"] = await reputation_service.support_cases_of(
            session=session, driver_id=viewer.driver.id
        )
        context.update(await _statements(request, viewer.driver, session, now, size))
    if viewer.rider is not None and viewer.principal is not None:
        cursor = page_cursor(request, "trips")
        after = (
            None
            if cursor is None
            else paging.decode_cursor(cursor, "rider_trips", (datetime, uuid.UUID))
        )
        found = await figures.trips_of_rider(
            session=session, rider_id=viewer.rider.id, limit=size + 1, after=after
        )
        trips, next_cursor = paging.page_of(found, size, figures.rider_trip_key, "rider_trips")
        context["trips"] = [
            {
                "trip": await trips_service.view_for(
                    session=session, trip=trip, principal=viewer.principal
                ),
                "receipt": await _receipt(session, trip, viewer.principal),
            }
            for trip in trips
        ]
        context["trips_pager"] = pager(request, "trips", next_cursor)
    return render(request, "me.html", viewer, status_code=status_code, **context)


async def _receipt(session: AsyncSession, trip: Trip, principal: Principal) -> ReceiptOut | None:
    """The trip's receipt as the API gives it, or None while it has none (not completed, or
    cancelled free of charge)."""
    if trip.status not in {TripStatus.completed, TripStatus.cancelled}:
        return None
    try:
        return await pay_routes.read_receipt(trip_id=trip.id, principal=principal, session=session)
    except NoReceipt:
        return None


async def _statements(
    request: Request, driver: Driver, session: AsyncSession, now: datetime, size: int
) -> dict[str, Any]:
    """A driver's pay statements, newest first, a page at a time. A driver has one period a
    week or two, so the page's cursor holds the page's number and the page reads the
    statements up to its end through the API's list (its first page of `limit`)."""
    cursor = page_cursor(request, "statements")
    number = 1
    if cursor is not None:
        (number,) = paging.decode_cursor(cursor, "statements", (int,))
        if not 1 <= number <= STATEMENTS_MAX // size + 1:
            raise paging.BadCursor()
    wanted = min(number * size + 1, STATEMENTS_MAX)
    found = await pay_routes.list_statements(
        request=request, response=Response(), driver=driver, session=session, now=now, limit=wanted
    )
    shown = found[(number - 1) * size : number * size]
    more = len(found) > number * size
    next_cursor = paging.encode_cursor("statements", (number + 1,)) if more else None
    return {"statements": shown, "statements_pager": pager(request, "statements", next_cursor)}


@router.post("/me/appeals", response_class=HTMLResponse)
async def appeal(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    now: Now,
    rating: Annotated[str, Form(alias="rating_id", max_length=64)] = "",
    statement: Annotated[str, Form(max_length=20_000)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    check_csrf(request, csrf)
    driver = await _driver_of(viewer, session)
    try:
        rating_id = uuid.UUID(rating)
    except ValueError:
        raise RatingNotFound(f"There is no rating {rating!r}") from None
    try:
        body = AppealIn.model_validate({"statement": statement})
    except ValidationError as exc:
        reasons = "; ".join(reason_text(request, e["reason"]) for e in field_errors(exc.errors()))
        return await _me(
            request,
            viewer,
            session,
            now,
            appeal_errors={str(rating_id): reasons},
            appeal_text={str(rating_id): statement},
            status_code=200,
        )
    await reputation_routes.appeal_rating(
        rating_id=rating_id,
        body=body,
        driver=driver,
        session=session,
        policy_source=request.app.state.reputation_policy_source,
        key=get_pseudonym_key(request),
        now=now,
    )
    return RedirectResponse("/me#ratings", status_code=303)


# --- reviewers --------------------------------------------------------------------------------


@router.get("/review", response_class=HTMLResponse)
async def review_page(
    request: Request, viewer: ViewerDep, session: SessionDep, now: Now
) -> Response:
    return await _review(request, viewer, session, now, errors={}, texts={})


async def _review(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    now: datetime,
    *,
    errors: dict[str, str],
    texts: dict[str, str],
    status_code: int = 200,
) -> Response:
    reviewer = await get_reviewer(await _driver_of(viewer, session))
    key = get_pseudonym_key(request)
    response = Response()
    appeals = await reputation_routes.list_appeals(
        request=request,
        response=response,
        driver=reviewer,
        session=session,
        key=key,
        now=now,
        status_filter="open",
        limit=page_size(request),
        cursor=page_cursor(request, "appeals"),
    )
    appeals_pager = pager(request, "appeals", next_of(response))
    trips = {a.rating.trip_id: await session.get(Trip, a.rating.trip_id) for a in appeals}
    decided = await reputation_routes.list_appeals(
        request=request,
        response=Response(),
        driver=reviewer,
        session=session,
        key=key,
        now=now,
        status_filter="decided",
        limit=paging.MAX_LIMIT,
        cursor=None,
    )
    return render(
        request,
        "review.html",
        viewer,
        status_code=status_code,
        appeals=appeals,
        appeals_pager=appeals_pager,
        trips=trips,
        decided=sorted(decided, key=lambda a: a.decided_at or a.filed_at, reverse=True)[:20],
        errors=errors,
        texts=texts,
    )


@router.post("/review/{appeal_id}", response_class=HTMLResponse)
async def decide(
    appeal_id: uuid.UUID,
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    now: Now,
    outcome: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=20_000)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    check_csrf(request, csrf)
    reviewer = await get_reviewer(await _driver_of(viewer, session))
    try:
        body = DecisionIn.model_validate({"outcome": outcome, "reason": reason})
    except ValidationError as exc:
        reasons = "; ".join(
            f"{e['field']}: {reason_text(request, e['reason'])}" for e in field_errors(exc.errors())
        )
        return await _review(
            request,
            viewer,
            session,
            now,
            errors={str(appeal_id): reasons},
            texts={str(appeal_id): reason},
            status_code=200,
        )
    await reputation_routes.decide_appeal(
        appeal_id=appeal_id,
        body=body,
        reviewer=reviewer,
        session=session,
        redis=request.app.state.redis,
        policy_source=request.app.state.reputation_policy_source,
        key=get_pseudonym_key(request),
        now=now,
    )
    return RedirectResponse("/review", status_code=303)


# --- the operations map -----------------------------------------------------------------------


@router.get("/ops", response_class=HTMLResponse)
async def ops_page(request: Request, viewer: ViewerDep, session: SessionDep, now: Now) -> Response:
    require_signed_in(viewer)
    if not viewer.sees_operations:
        raise Forbidden("The operations map is for operators and the bargaining committee")
    agreement = await bargaining_service.in_force(session=session, at=now)
    settings = request.app.state.settings
    area = request.app.state.service_area
    return render(
        request,
        "ops.html",
        viewer,
        area_geojson=area.geometry.__geo_interface__,
        tiles_url=settings.map_tiles_url,
        tiles_attribution=settings.map_tiles_attribution,
        batch_interval_ms=agreement.terms.dispatch.batch_interval_ms,
    )


__all__ = ["router"]
