"""The reviewers' page: the appeals waiting for a person, and their decisions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from coop import paging
from coop.clock import Now
from coop.dependencies import SessionDep
from coop.errors import field_errors
from coop.state import CoreState, state_of
from dispatch.trips.models import Trip
from drivers.dependencies import get_reviewer
from reputation import application as reputation_app
from reputation.dependencies import get_policy_source, get_pseudonym_key
from reputation.schemas import DecisionIn
from server.web.pages.common import (
    ViewerDep,
    check_csrf,
    driver_of,
    page_cursor,
    page_router,
    page_size,
    pager,
    reason_text,
)
from server.web.rendering import Viewer, render

router = page_router()


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
    reviewer = await get_reviewer(await driver_of(viewer, session))
    key = get_pseudonym_key(request)
    appeals, next_appeals = await reputation_app.list_appeals(
        driver=reviewer,
        session=session,
        key=key,
        now=now,
        status="open",
        limit=page_size(request),
        cursor=page_cursor(request, "appeals"),
    )
    appeals_pager = pager(request, "appeals", next_appeals)
    trips = {a.rating.trip_id: await session.get(Trip, a.rating.trip_id) for a in appeals}
    decided, _ = await reputation_app.list_appeals(
        driver=reviewer,
        session=session,
        key=key,
        now=now,
        status="decided",
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
    reviewer = await get_reviewer(await driver_of(viewer, session))
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
    await reputation_app.decide_appeal(
        driver=reviewer,
        appeal_id=appeal_id,
        outcome=body.outcome,
        reason=body.reason,
        session=session,
        redis=state_of(request.app, CoreState).redis,
        policy_source=get_policy_source(request),
        key=get_pseudonym_key(request),
        now=now,
    )
    return RedirectResponse("/review", status_code=303)
