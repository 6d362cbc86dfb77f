"""The operators' safety page (`/safety`, docs/safety.md): the queue of SOS alerts and safety
cases with the age of each, and a person's acknowledge, notes and resolution. The same
functions as the API's routes (`dispatch.safety.alerts`); the raiser hears the change on their
socket as they would through the API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from coop.clock import Now
from coop.dependencies import SessionDep
from coop.errors import Forbidden
from coop.state import CoreState, state_of
from dispatch.safety import alerts
from dispatch.safety.frames import tell_raiser
from dispatch.safety.schemas import FLAG_REASONS, NoteIn, ResolveIn
from server.web.pages.common import (
    ViewerDep,
    check_csrf,
    page_router,
    reasons_text,
    require_signed_in,
)
from server.web.pages.messages import N_
from server.web.rendering import Viewer, render

router = page_router()

KIND_NAMES = {
    "sos": N_("SOS"),
    "ride_check": N_("Ride check without an answer, or answered “help”"),
    "driver_or_car_does_not_match": N_("The driver or the car did not match (rider cancelled)"),
    "rider_flag": N_("A driver flagged the rider"),
}
OUTCOME_NAMES = {
    "real": N_("Real"),
    "false_alarm": N_("False alarm"),
    "drill": N_("Drill"),
}
FLAG_REASON_NAMES = {
    "threatening_behaviour": N_("Threatening behaviour"),
    "harassment": N_("Harassment"),
    "intoxicated": N_("Intoxicated"),
    "damage_to_vehicle": N_("Damage to the vehicle"),
    "refused_to_leave": N_("Refused to leave the car"),
    "other": N_("Other"),
}
assert set(FLAG_REASON_NAMES) == set(FLAG_REASONS)


def _operator(viewer: Viewer) -> uuid.UUID | None:
    require_signed_in(viewer)
    if not viewer.is_admin:
        raise Forbidden("The safety queue is for the co-op's operators")
    assert viewer.principal is not None
    return viewer.principal.subject_id


@router.get("/safety", response_class=HTMLResponse)
async def safety_page(
    request: Request, viewer: ViewerDep, session: SessionDep, now: Now
) -> Response:
    return await _page(request, viewer, session, now, "")


async def _page(
    request: Request, viewer: Viewer, session: AsyncSession, now: datetime, error: str
) -> Response:
    _operator(viewer)
    return render(
        request,
        "safety.html",
        viewer,
        open_rows=await alerts.queue(session, now=now, open_only=True),
        recent=[
            row
            for row in await alerts.queue(session, now=now, open_only=False, limit=40)
            if row.status == "resolved"
        ][:20],
        kinds=KIND_NAMES,
        outcomes=OUTCOME_NAMES,
        flag_reasons=FLAG_REASON_NAMES,
        error=error,
    )


def _back(alert_id: uuid.UUID) -> RedirectResponse:
    return RedirectResponse(f"/safety#alert-{alert_id}", status_code=303)


@router.post("/safety/{alert_id}/acknowledge", response_class=HTMLResponse)
async def acknowledge(
    alert_id: uuid.UUID,
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    now: Now,
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    check_csrf(request, csrf)
    alert = await alerts.acknowledge(
        session, alert_id=alert_id, operator_id=_operator(viewer), now=now
    )
    await session.commit()
    await tell_raiser(
        state_of(request.app, CoreState).redis, alert, position_every_s=alerts.POSITION_EVERY_S
    )
    return _back(alert_id)


@router.post("/safety/{alert_id}/note", response_class=HTMLResponse)
async def note(
    alert_id: uuid.UUID,
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    now: Now,
    text: Annotated[str, Form(max_length=20_000)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    check_csrf(request, csrf)
    operator = _operator(viewer)
    try:
        body = NoteIn.model_validate({"text": text})
    except ValidationError as exc:
        return await _page(request, viewer, session, now, reasons_text(request, exc))
    await alerts.add_note(session, alert_id=alert_id, author_id=operator, text=body.text, now=now)
    await session.commit()
    return _back(alert_id)


@router.post("/safety/{alert_id}/resolve", response_class=HTMLResponse)
async def resolve(
    alert_id: uuid.UUID,
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    now: Now,
    outcome: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=20_000)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    check_csrf(request, csrf)
    operator = _operator(viewer)
    try:
        body = ResolveIn.model_validate({"outcome": outcome, "note": note or None})
    except ValidationError as exc:
        return await _page(request, viewer, session, now, reasons_text(request, exc))
    alert = await alerts.resolve(
        session,
        alert_id=alert_id,
        operator_id=operator,
        outcome=body.outcome,
        note=body.note,
        now=now,
    )
    await session.commit()
    await tell_raiser(
        state_of(request.app, CoreState).redis, alert, position_every_s=alerts.POSITION_EVERY_S
    )
    return _back(alert_id)
