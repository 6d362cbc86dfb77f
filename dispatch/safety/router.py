"""HTTP routes of safety (docs/protocol.md, "SOS" and "Safety cases"): a rider or a driver raises
an SOS and sends where they are; a driver flags a rider; the operators work the queue."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status

from coop.auth import Admin, CurrentPrincipal, Principal, Role
from coop.clock import Now
from coop.dependencies import RedisDep, SessionDep
from coop.errors import Forbidden
from coop.state import CoreState, state_of
from dispatch.safety import alerts, cases
from dispatch.safety.exceptions import BadPosition
from dispatch.safety.frames import tell_raiser
from dispatch.safety.schemas import (
    AlertOut,
    CreatedOut,
    FlagIn,
    NoteIn,
    Position,
    ResolveIn,
    SosIn,
    SosOut,
    status_of,
)
from dispatch.trips import queries
from drivers.dependencies import CurrentDriver

router = APIRouter(prefix="/v1", tags=["safety"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid token"},
    403: {"description": "Not a party to this trip, or the wrong kind of account"},
    404: {"description": "No such trip, or no such alert (of yours)"},
    409: {"description": "alert_already_acknowledged, alert_resolved"},
    422: {"description": "Invalid body"},
}


def _raiser(principal: Principal) -> tuple[uuid.UUID, alerts.Role]:
    if principal.role is Role.admin or principal.subject_id is None:
        raise Forbidden("An SOS is raised by a rider or a driver")
    return principal.subject_id, "rider" if principal.role is Role.rider else "driver"


async def _sos(
    request: Request,
    principal: Principal,
    session: SessionDep,
    redis: RedisDep,
    trip_id: uuid.UUID | None,
    body: SosIn | None,
) -> SosOut:
    account_id, role = _raiser(principal)
    body = body or SosIn()
    if (body.lat is None) != (body.lon is None):
        raise BadPosition("Send both lat and lon, or neither")
    position = None if body.lat is None or body.lon is None else (body.lat, body.lon)
    alert_id = await alerts.raise_alert(
        session,
        clock=state_of(request.app, CoreState).clock,
        kind="sos",
        account_id=account_id,
        role=role,
        trip_id=trip_id,
        position=position,
        detail=body.detail,
        drill=body.drill,
    )
    # The row is the alert: committed before anything is published, so Redis away loses nothing.
    await session.commit()
    alert = await alerts.status_for_raiser(
        session, alert_id=alert_id, account_id=account_id, role=role
    )
    await tell_raiser(redis, alert, position_every_s=alerts.POSITION_EVERY_S)
    return SosOut(
        id=alert.id,
        drill=alert.drill,
        trip_id=alert.trip_id,
        status=status_of(alert),
        position_every_s=0 if alert.drill else alerts.POSITION_EVERY_S,
    )


@router.post(
    "/trips/{trip_id}/sos",
    status_code=status.HTTP_201_CREATED,
    response_model=SosOut,
    responses=_PROBLEMS,
)
async def trip_sos(
    trip_id: uuid.UUID,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    redis: RedisDep,
    body: SosIn | None = None,
) -> SosOut:
    """An SOS about this trip, by its rider or its driver (anyone else: `403 not_your_trip`).
    Recorded with both parties, the car and the last positions; at once in the operators' queue
    (`drill: true`: recorded as a drill and answered resolved, never queued)."""
    return await _sos(request, principal, session, redis, trip_id, body)


@router.post(
    "/sos", status_code=status.HTTP_201_CREATED, response_model=SosOut, responses=_PROBLEMS
)
async def sos(
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    redis: RedisDep,
    body: SosIn | None = None,
) -> SosOut:
    """An SOS by a rider or a driver; about their open trip if they have one, else about no
    trip."""
    account_id, role = _raiser(principal)
    open_trip = (
        await queries.open_trip_of_rider(session=session, rider_id=account_id)
        if role == "rider"
        else await queries.open_trip_of_driver(session=session, driver_id=account_id)
    )
    trip_id = None if open_trip is None else open_trip.id
    return await _sos(request, principal, session, redis, trip_id, body)


@router.post(
    "/sos/{alert_id}/positions",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_PROBLEMS,
)
async def sos_position(
    alert_id: uuid.UUID, body: Position, principal: CurrentPrincipal, session: SessionDep, now: Now
) -> None:
    """Where the raiser is now, while their alert is open (the HTTP twin of the `sos_position`
    frame, for when the socket is down). `409 alert_resolved` once resolved: stop sending."""
    account_id, role = _raiser(principal)
    await alerts.record_position(
        session,
        alert_id=alert_id,
        account_id=account_id,
        role=role,
        lat=body.lat,
        lon=body.lon,
        now=now,
    )
    await session.commit()


@router.get("/sos/{alert_id}", response_model=SosOut, responses=_PROBLEMS)
async def sos_status(
    alert_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> SosOut:
    """The raiser's own alert: whether a person has acknowledged or resolved it."""
    account_id, role = _raiser(principal)
    alert = await alerts.status_for_raiser(
        session, alert_id=alert_id, account_id=account_id, role=role
    )
    resolved = alert.resolved_at is not None
    return SosOut(
        id=alert.id,
        drill=alert.drill,
        trip_id=alert.trip_id,
        status=status_of(alert),
        position_every_s=0 if resolved else alerts.POSITION_EVERY_S,
    )


@router.post(
    "/trips/{trip_id}/flag",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedOut,
    responses=_PROBLEMS,
)
async def flag_rider(
    trip_id: uuid.UUID, body: FlagIn, driver: CurrentDriver, session: SessionDep, now: Now
) -> CreatedOut:
    """The trip's driver asks a person to review its rider (a reason from the list, a note).
    A case on /safety; nobody is blocked or marked by it."""
    case_id = await cases.flag_rider(
        session, trip_id=trip_id, driver_id=driver.id, reason=body.reason, note=body.note, now=now
    )
    await session.commit()
    return CreatedOut(id=case_id)


# --- the operators' queue --------------------------------------------------------------------


@router.get("/safety/alerts", response_model=list[AlertOut], responses=_PROBLEMS)
async def list_alerts(
    session: SessionDep,
    _: Admin,
    now: Now,
    status_filter: Annotated[Literal["open", "all"], Query(alias="status")] = "open",
    kind: Annotated[Literal["alerts", "cases", "all"], Query()] = "all",
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> list[AlertOut]:
    """Alerts and cases (operators): the open ones oldest first, with their age, positions and
    notes; `?status=all` for every one, newest first; `?kind=alerts|cases`. Drills never."""
    return await alerts.queue(
        session, now=now, open_only=status_filter == "open", group=kind, limit=limit
    )


@router.get("/safety/alerts/{alert_id}", response_model=AlertOut, responses=_PROBLEMS)
async def read_alert(alert_id: uuid.UUID, session: SessionDep, _: Admin, now: Now) -> AlertOut:
    """One alert or case (operators)."""
    return await alerts.get(session, alert_id=alert_id, now=now)


@router.post("/safety/alerts/{alert_id}/acknowledge", response_model=AlertOut, responses=_PROBLEMS)
async def acknowledge(
    alert_id: uuid.UUID, session: SessionDep, redis: RedisDep, operator: Admin, now: Now
) -> AlertOut:
    """A person takes it (operators). Two at once: one wins, the other `409
    alert_already_acknowledged`. The raiser's socket hears `sos_status: acknowledged`."""
    alert = await alerts.acknowledge(
        session, alert_id=alert_id, operator_id=operator.subject_id, now=now
    )
    await session.commit()
    await tell_raiser(redis, alert, position_every_s=alerts.POSITION_EVERY_S)
    return await alerts.get(session, alert_id=alert_id, now=now)


@router.post(
    "/safety/alerts/{alert_id}/notes",
    status_code=status.HTTP_201_CREATED,
    response_model=AlertOut,
    responses=_PROBLEMS,
)
async def add_note(
    alert_id: uuid.UUID, body: NoteIn, session: SessionDep, operator: Admin, now: Now
) -> AlertOut:
    """An operator's note on an alert or case (operators)."""
    await alerts.add_note(
        session, alert_id=alert_id, author_id=operator.subject_id, text=body.text, now=now
    )
    await session.commit()
    return await alerts.get(session, alert_id=alert_id, now=now)


@router.post("/safety/alerts/{alert_id}/resolve", response_model=AlertOut, responses=_PROBLEMS)
async def resolve(
    alert_id: uuid.UUID,
    body: ResolveIn,
    session: SessionDep,
    redis: RedisDep,
    operator: Admin,
    now: Now,
) -> AlertOut:
    """Closes it with an outcome, `real`, `false_alarm` or `drill`, and a note (operators). A
    false alarm counts against nobody. Already resolved: `409 alert_resolved`."""
    alert = await alerts.resolve(
        session,
        alert_id=alert_id,
        operator_id=operator.subject_id,
        outcome=body.outcome,
        note=body.note,
        now=now,
    )
    await session.commit()
    await tell_raiser(redis, alert, position_every_s=alerts.POSITION_EVERY_S)
    return await alerts.get(session, alert_id=alert_id, now=now)
