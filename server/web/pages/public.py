"""The pages anyone may read: home, the agreement and its fare calculator, transparency; and
the operations map, for operators and the committee."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import application as bargaining_app
from bargaining import fares as fare_rules
from bargaining.exceptions import NoAgreementInForce
from coop import audit, paging
from coop.clock import Now
from coop.dependencies import SessionDep
from coop.errors import Forbidden
from coop.state import CoreState, state_of
from dispatch.matching import capacity
from dispatch.safety import alerts as safety_alerts
from dispatch.safety import figures as safety_figures
from dispatch.trips import fare_caps, figures
from reputation import application as reputation_app
from reputation.dependencies import get_policy_source
from reputation.schemas import DataRegisterOut
from server.decisions import review_figures
from server.web.i18n import api_text
from server.web.pages.common import (
    ViewerDep,
    page_cursor,
    page_router,
    page_size,
    pager,
    require_signed_in,
)
from server.web.pages.messages import EXCLUDED_REASONS, OUTCOMES
from server.web.rendering import language_of, render, translate, translate_plural

router = page_router()


# --- home ------------------------------------------------------------------------------------


def local_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    local = now.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, viewer: ViewerDep, session: SessionDep, now: Now) -> Response:
    settings = state_of(request.app, CoreState).settings
    agreement = await bargaining_app.in_force(session=session, now=now)
    day = await figures.day_figures(
        session=session,
        since=local_midnight(now, ZoneInfo(settings.time_zone)),
        now=now,
        grace_s=settings.driver_grace_s,
    )
    report = await reputation_app.ratings_report(
        session=session, policy_source=get_policy_source(request), now=now
    )
    return render(
        request,
        "home.html",
        viewer,
        agreement=agreement,
        day=day,
        appeals_open=report.appeals.open,
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
    current = await bargaining_app.in_force(session=session, now=now)
    versions = await bargaining_app.versions(session=session)
    numbers = [v.version for v in versions]
    # The diff: any two versions; by default the one in force against the one before it.
    diff_a = a if a in numbers else max(1, current.version - 1)
    diff_b = b if b in numbers else current.version
    diff_rows = await bargaining_app.diff(session=session, a=diff_a, b=diff_b)
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
        fare_caps=await fare_caps.in_force_or_to_come(session=session, now=now),
    )


# --- transparency ----------------------------------------------------------------------------


@router.get("/transparency", response_class=HTMLResponse)
async def transparency_page(
    request: Request, viewer: ViewerDep, session: SessionDep, now: Now
) -> Response:
    report = await reputation_app.ratings_report(
        session=session, policy_source=get_policy_source(request), now=now
    )
    register = _register_in(language_of(request), reputation_app.data_register_report())
    # The newest entries on the page, a page at a time (`?audit=<cursor>` holds the seq below
    # which the page starts); the browser's check reads the whole chain from the API.
    size = page_size(request)
    cursor = page_cursor(request, "audit")
    before = None if cursor is None else paging.decode_cursor(cursor, "audit_newest", (int,))[0]
    found = await audit.latest_entries(session=session, limit=size + 1, before=before)
    entries, next_cursor = paging.page_of(found, size, lambda e: (e.seq,), "audit_newest")
    overdue = await reputation_app.overdue_appeals(session=session, now=now, limit=OVERDUE_SHOWN)
    ratings, appeals = report.ratings, report.appeals
    star_rows = [
        (translate_plural(request, "%(num)s star", "%(num)s stars", int(stars)), count)
        for stars, count in sorted(ratings.distribution.items(), reverse=True)
    ]
    excluded_rows = [
        (translate(request, EXCLUDED_REASONS[reason]), value.count)
        for reason, value in ratings.excluded.items()
    ]
    outcome_rows = [
        (translate(request, OUTCOMES[outcome]), count)
        for outcome, count in appeals.by_outcome.items()
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
        overdue=overdue,
        now=now,
        star_rows=star_rows,
        excluded_rows=excluded_rows,
        outcome_rows=outcome_rows,
        reviews=await review_figures(session=session, now=now),
        safety=await safety_figures.safety_figures(session),
        safety_promise_s=await _ack_within_s(session, now),
    )


async def _ack_within_s(session: AsyncSession, now: datetime) -> int:
    """The agreement's promise of a person on an alert, as in force now (the founding one's
    when none is)."""
    try:
        agreement = await bargaining_app.in_force(session=session, now=now)
    except NoAgreementInForce:
        return safety_alerts.FOUNDING_ACK_WITHIN_S
    return int(agreement.terms.safety.ack_within_s)


# The overdue appeals /transparency lists (the count of all of them is beside it).
OVERDUE_SHOWN = 20


def _register_in(language: str, register: DataRegisterOut) -> DataRegisterOut:
    """The data register (reputation.data_register, English like the API) in `language`."""

    def say(text: str) -> str:
        return api_text(language, text) or text

    return register.model_copy(
        update={
            "statement": say(register.statement),
            "readers_note": say(register.readers_note),
            "kinds": [
                kind.model_copy(
                    update={
                        "description": say(kind.description),
                        "purpose": say(kind.purpose),
                        "retention": say(kind.retention),
                        "readers": [say(reader) for reader in kind.readers],
                    }
                )
                for kind in register.kinds
            ],
        }
    )


# --- the operations map -----------------------------------------------------------------------


@router.get("/ops", response_class=HTMLResponse)
async def ops_page(request: Request, viewer: ViewerDep, session: SessionDep, now: Now) -> Response:
    require_signed_in(viewer)
    if not viewer.sees_operations:
        raise Forbidden("The operations map is for operators and the bargaining committee")
    agreement = await bargaining_app.in_force(session=session, now=now)
    core = state_of(request.app, CoreState)
    settings, area = core.settings, core.service_area
    cap = capacity.cap_of(settings)
    return render(
        request,
        "ops.html",
        viewer,
        cars_cap=cap,
        cars_waiting=None if cap is None else await capacity.waiting(session=session),
        area_geojson=area.geometry.__geo_interface__,
        tiles_url=settings.map_tiles_url,
        tiles_attribution=settings.map_tiles_attribution,
        batch_interval_ms=agreement.terms.dispatch.batch_interval_ms,
        # The SOS alarm is the operators' (the committee reads demand, not alerts).
        alarm=await safety_alerts.alarm(session) if viewer.is_admin else None,
    )
