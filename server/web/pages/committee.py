"""The agreement's votes: the committee's drafts, a proposal's page, a member's ballot and
the close."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import application as bargaining_app
from bargaining.dependencies import BargainingState, ballot_master
from bargaining.exceptions import InvalidProposal
from bargaining.models import ProposalStatus
from bargaining.schemas import BallotIn, ProposalCreate
from bargaining.terms import terms_to_wire
from coop.clock import Now
from coop.dependencies import SessionDep
from coop.errors import field_errors
from coop.state import CoreState, state_of
from drivers.dependencies import get_committee_member
from server.web.pages import impact as impact_page
from server.web.pages.common import (
    QuietViewerDep,
    ViewerDep,
    check_csrf,
    driver_of,
    named_by_field,
    page_cursor,
    page_router,
    page_size,
    pager,
    reason_text,
)
from server.web.rendering import language_of, render

router = page_router()


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


def form_value(value: Any, language: str = "en") -> str:
    """A term as its form field shows it: a decimal with the language's decimal sign ("3,50"
    in French; `terms_from_form` reads either sign back)."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    text = str(value)
    if language == "fr" and not isinstance(value, bool) and _is_decimal(text):
        return text.replace(".", ",")
    return text


def _is_decimal(text: str) -> bool:
    whole, point, places = text.lstrip("-").partition(".")
    return bool(point) and whole.isdigit() and places.isdigit()


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
                out[key] = (raw.replace(",", ".") if _looks_decimal(raw) else raw) or None
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
        context[f"{name}_proposals"], next_cursor = await bargaining_app.list_proposals(
            session=session,
            now=now,
            member=False,  # the pages show no dividend's lines
            status=status,
            limit=page_size(request),
            cursor=page_cursor(request, name),
        )
        context[f"{name}_pager"] = pager(request, name, next_cursor)
    return context


@router.get("/proposals", response_class=HTMLResponse)
async def proposals_page(
    request: Request, viewer: ViewerDep, session: SessionDep, now: Now
) -> Response:
    current = await bargaining_app.in_force(session=session, now=now)
    zone = ZoneInfo(state_of(request.app, CoreState).settings.time_zone)
    draft = {
        "title": "",
        "rationale": "",
        "voting_closes_at": local_input(now + timedelta(days=7), zone),
        "effective_from": "",
        "fields": [
            (name, form_value(value, language_of(request)))
            for name, value in term_fields(terms_to_wire(current.terms))
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
    `action=open` puts it to the vote (the same checks, then the same application function as
    the API's route)."""
    form = {key: str(value) for key, value in (await request.form()).items()}
    check_csrf(request, form.get("csrf"))
    member = await get_committee_member(await driver_of(viewer, session))
    zone = ZoneInfo(state_of(request.app, CoreState).settings.time_zone)
    current = await bargaining_app.in_force(session=session, now=now)
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
            (name, form.get(name, form_value(value, language_of(request))))
            for name, value in term_fields(current_wire)
        ],
    }
    errors: dict[str, str] = {}
    preview = None
    try:
        proposal_in = ProposalCreate.model_validate(body)
        sources = state_of(request.app, BargainingState)
        trips_source = sources.completed_trips_source
        if form.get("action") == "open":
            opened = await bargaining_app.open_proposal(
                driver=member,
                body=proposal_in,
                session=session,
                now=now,
                trips_source=trips_source,
                patronage_source=sources.patronage_source,
                redis=sources.redis,
            )
            return RedirectResponse(f"/proposals/{opened.id}", status_code=303)
        found = await bargaining_app.preview_proposal(
            driver=member, body=proposal_in, session=session, now=now, trips_source=trips_source
        )
        preview = {
            "base": found.base_version,
            "changes": found.changes,
            "impact": found.impact.to_wire(),
        }
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


@router.get("/proposals/{proposal_id}", response_class=HTMLResponse)
async def proposal_page(
    proposal_id: uuid.UUID,
    request: Request,
    viewer: QuietViewerDep,
    session: SessionDep,
    now: Now,
    voted: bool = False,
) -> Response:
    proposal = await bargaining_app.read_proposal(
        proposal_id=proposal_id, session=session, now=now, member=False
    )
    base = await bargaining_app.version(session=session, number=proposal.base_version)
    ballot = None
    if viewer.driver is not None:
        ballot = await bargaining_app.own_ballot(
            driver=viewer.driver,
            proposal_id=proposal_id,
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
        replay=await impact_page.latest_replay(session=session, proposal_id=proposal_id, now=now),
        replay_figures=impact_page.FIGURE_LABELS,
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
    driver = await driver_of(viewer, session)
    try:
        ballot_in = BallotIn.model_validate({"choice": choice})
    except ValidationError:
        return RedirectResponse(f"/proposals/{proposal_id}", status_code=303)
    await bargaining_app.cast_ballot(
        driver=driver,
        proposal_id=proposal_id,
        body=ballot_in,
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
    driver = await driver_of(viewer, session)
    await bargaining_app.close_proposal(
        driver=driver, proposal_id=proposal_id, session=session, now=now
    )
    return RedirectResponse(f"/proposals/{proposal_id}", status_code=303)
