"""A member's own page: a driver's ratings, score, appeals and pay statements; a rider's trips
and receipts."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from coop import jurisdiction, paging, passkeys, recovery
from coop.auth import Principal
from coop.clock import Now
from coop.dependencies import SessionDep
from coop.state import CoreState, state_of
from dispatch.trips import figures
from dispatch.trips import service as trips_service
from dispatch.trips.models import Trip, TripStatus
from drivers import qualifications
from drivers.models import Driver
from pay import application as pay_app
from pay.exceptions import NoReceipt
from pay.schemas import ReceiptOut
from reputation import application as reputation_app
from reputation import decision_reviews
from reputation.decision_reviews import ReviewOut, ReviewRequest
from reputation.dependencies import get_policy_source, get_pseudonym_key
from reputation.exceptions import RatingNotFound
from reputation.schemas import AppealIn
from server import decisions
from server.web.i18n import api_text
from server.web.pages import me_photo
from server.web.pages.common import (
    ViewerDep,
    check_csrf,
    driver_of,
    page_cursor,
    page_router,
    page_size,
    pager,
    reasons_text,
    require_signed_in,
)
from server.web.rendering import Viewer, language_of, render

router = page_router()

# How far back /me lists the recovery links issued for the account.
RECOVERY_LINKS_SHOWN = timedelta(days=90)
# The most statements the API lists at once (GET /v1/drivers/me/statements?limit=).
STATEMENTS_MAX = 520


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
    review_error: str | None = None,
    status_code: int = 200,
) -> Response:
    require_signed_in(viewer)
    context: dict[str, Any] = {
        "appeal_errors": appeal_errors,
        "appeal_text": appeal_text,
        "review_error": review_error,
    }
    if viewer.principal is not None and (viewer.driver is not None or viewer.rider is not None):
        # Requests for a person's review of an automated decision (docs/jurisdiction.md).
        language = language_of(request)
        context["reviewable"] = [
            (d.key, api_text(language, d.decides) or d.decides)
            for d in decisions.REVIEWABLE.values()
        ]
        context["my_reviews"] = [
            ReviewOut.of(review, now=now)
            for review in await decision_reviews.mine(session=session, principal=viewer.principal)
        ]
    if viewer.principal is not None and viewer.principal.subject_id is not None:
        # How the person signs in, and every recovery link issued for them (coop/recovery.py).
        context["my_passkeys"] = await passkeys.mine(session=session, principal=viewer.principal)
        context["recovery_links"] = await recovery.issued_for(
            session=session, principal=viewer.principal, since=now - RECOVERY_LINKS_SHOWN
        )
        context["recovered"] = request.query_params.get("recovered") == "1"
    policy_source = get_policy_source(request)
    size = page_size(request)
    if viewer.driver is not None:
        key = get_pseudonym_key(request)
        context["ratings"], next_ratings = await reputation_app.my_ratings(
            driver=viewer.driver,
            session=session,
            policy_source=policy_source,
            key=key,
            now=now,
            limit=size,
            cursor=page_cursor(request, "ratings"),
        )
        context["ratings_pager"] = pager(request, "ratings", next_ratings)
        context["reputation"] = await reputation_app.my_reputation(
            driver=viewer.driver, session=session, policy_source=policy_source, now=now
        )
        context["support_cases"] = await reputation_app.my_support_cases(
            driver=viewer.driver, session=session
        )
        # The law's qualification: what is missing, and what lapses soon (docs/jurisdiction.md).
        profile = jurisdiction.load(state_of(request.app, CoreState).settings.jurisdiction)
        context["standing"] = await qualifications.standing(
            session=session, profile=profile, driver_id=viewer.driver.id, now=now
        )
        context.update(await _statements(request, viewer.driver, session, now, size))
        context.update(await me_photo.photo_context(request, session, viewer.driver.id))
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
                "receipt": await _receipt(request, session, trip, viewer.principal),
            }
            for trip in trips
        ]
        context["trips_pager"] = pager(request, "trips", next_cursor)
    return render(request, "me.html", viewer, status_code=status_code, **context)


async def _receipt(
    request: Request, session: AsyncSession, trip: Trip, principal: Principal
) -> ReceiptOut | None:
    """The trip's receipt as the API gives it, or None while it has none (not completed, or
    cancelled free of charge)."""
    if trip.status not in {TripStatus.completed, TripStatus.cancelled}:
        return None
    try:
        settings = state_of(request.app, CoreState).settings
        return await pay_app.receipt(
            principal=principal,
            trip_id=trip.id,
            session=session,
            profile=jurisdiction.load(settings.jurisdiction),
            registrations=settings.tax_registrations,
        )
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
    found, _ = await pay_app.statements(
        driver=driver, session=session, now=now, limit=wanted, cursor=None
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
    driver = await driver_of(viewer, session)
    try:
        rating_id = uuid.UUID(rating)
    except ValueError:
        raise RatingNotFound(f"There is no rating {rating!r}") from None
    try:
        body = AppealIn.model_validate({"statement": statement})
    except ValidationError as exc:
        reasons = reasons_text(request, exc)
        return await _me(
            request,
            viewer,
            session,
            now,
            appeal_errors={str(rating_id): reasons},
            appeal_text={str(rating_id): statement},
            status_code=200,
        )
    await reputation_app.appeal_rating(
        driver=driver,
        rating_id=rating_id,
        statement=body.statement,
        session=session,
        policy_source=get_policy_source(request),
        key=get_pseudonym_key(request),
        now=now,
    )
    return RedirectResponse("/me#ratings", status_code=303)


@router.post("/me/reviews", response_class=HTMLResponse)
async def ask_for_review(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    now: Now,
    decision: Annotated[str, Form(max_length=64)] = "",
    statement: Annotated[str, Form(max_length=20_000)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Asks a person to review an automated decision, as `POST /v1/decision-reviews` does."""
    check_csrf(request, csrf)
    require_signed_in(viewer)
    assert viewer.principal is not None
    try:
        body = ReviewRequest.model_validate({"decision": decision, "statement": statement})
    except ValidationError as exc:
        reasons = reasons_text(request, exc)
        return await _me(
            request, viewer, session, now, appeal_errors={}, appeal_text={}, review_error=reasons
        )
    await decisions.ask_for_review(principal=viewer.principal, body=body, session=session, now=now)
    return RedirectResponse("/me#reviews", status_code=303)
