"""SOS alerts and the operators' queue (docs/safety.md, "SOS"): raising one (by a rider or a
driver, or by the ride check), the positions sent while it is open, and a person's acknowledge,
notes and resolution. Cases (`dispatch.safety.cases`) share this life.

An alert is a database row first: it is recorded in the caller's transaction before anything is
published, so an alert raised while Redis restarts is not lost; the operators' pages read the
table. Every step is in the audit log, without names or words (ids, kinds, outcomes, times).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import service as bargaining_service
from bargaining.exceptions import NoAgreementInForce
from coop import audit
from dispatch.locations import service as locations_service
from dispatch.safety.exceptions import (
    AlertAlreadyAcknowledged,
    AlertNotFound,
    AlertNotYours,
    AlertResolved,
)
from dispatch.safety.models import (
    ALERT_KINDS,
    CASE_KINDS,
    AlertKind,
    Outcome,
    SafetyAlert,
    SafetyAlertNote,
    SafetyAlertPosition,
)
from dispatch.safety.schemas import AlertOut
from dispatch.trips.exceptions import NotYourTrip
from dispatch.trips.models import Trip
from dispatch.trips.queries import load
from drivers.models import DriverVehicle

Clock = Callable[[], datetime]
Role = Literal["rider", "driver"]

# The founding agreement's `safety.ack_within_s`: the promise an alert is held to when no
# agreement is in force (an SOS is recorded whatever the state of the agreement).
FOUNDING_ACK_WITHIN_S = 60
# How often the raiser's app sends its position while the alert is open (docs/protocol.md).
POSITION_EVERY_S = 2
# Positions closer together than this are not stored: the app's pace is every 2 s, and a
# client sending faster must not fill the table.
MIN_POSITION_GAP = timedelta(milliseconds=500)
POSITIONS_SHOWN = 50


@dataclass(frozen=True)
class Raised:
    """A row just recorded, for the answer and the push after the commit."""

    id: uuid.UUID
    drill: bool
    trip_id: uuid.UUID | None


def _party(trip: Trip, role: Role, account_id: uuid.UUID) -> None:
    if (role == "rider" and trip.rider_id == account_id) or (
        role == "driver" and trip.driver_id == account_id
    ):
        return
    raise NotYourTrip("Only the trip's rider and its driver may raise an alert about it")


async def _ack_within_s(session: AsyncSession, now: datetime) -> int:
    try:
        agreement = await bargaining_service.in_force(session=session, at=now)
    except NoAgreementInForce:
        return FOUNDING_ACK_WITHIN_S
    return int(agreement.terms.safety.ack_within_s)


async def _car_of(
    session: AsyncSession, driver_id: uuid.UUID | None
) -> tuple[str | None, str | None]:
    if driver_id is None:
        return None, None
    vehicle = await session.get(DriverVehicle, driver_id)
    if vehicle is None:
        return None, None
    described = " ".join(part for part in (vehicle.colour, vehicle.make, vehicle.model) if part)
    return vehicle.plate, (described[:120] or None)


async def record(
    session: AsyncSession,
    *,
    now: datetime,
    kind: AlertKind,
    account_id: uuid.UUID,
    role: Role,
    trip: Trip | None,
    position: tuple[float, float] | None,
    detail: str | None,
    reason: str | None = None,
    drill: bool = False,
) -> SafetyAlert:
    """The one way a row of the queue is made, for alerts and cases alike: who raised it, the
    trip and both its parties, the car, where the raiser was (if sent) and where the car last
    was; audited. The caller has checked the raiser is a party to `trip`, and commits."""
    rider_id = trip.rider_id if trip is not None else (account_id if role == "rider" else None)
    driver_id = trip.driver_id if trip is not None else (account_id if role == "driver" else None)
    plate, described = await _car_of(session, driver_id)
    alert = SafetyAlert(
        id=uuid.uuid4(),
        kind=kind.value,
        drill=drill,
        raised_by_role=role,
        raised_by_id=account_id,
        trip_id=None if trip is None else trip.id,
        rider_id=rider_id,
        driver_id=driver_id,
        vehicle_plate=plate,
        vehicle_description=described,
        reason=reason,
        detail=detail or None,
        raised_at=now,
        ack_within_s=await _ack_within_s(session, now),
        # A drill is answered at once by the service itself: it shows the person the button
        # works, and no operator is called for it.
        resolved_at=now if drill else None,
        outcome=Outcome.drill.value if drill else None,
    )
    session.add(alert)
    await session.flush()
    if position is not None:
        session.add(
            SafetyAlertPosition(
                alert_id=alert.id, source="raiser", lat=position[0], lon=position[1], at=now
            )
        )
    if driver_id is not None and not drill:
        presence = await locations_service.presence(session=session, driver_id=driver_id)
        if presence is not None and presence.position is not None:
            session.add(
                SafetyAlertPosition(
                    alert_id=alert.id,
                    source="car",
                    lat=presence.position.lat,
                    lon=presence.position.lon,
                    at=presence.reported_at or now,
                )
            )
    await audit.append(
        session=session,
        kind="safety.raised",
        subject=f"safety_alert:{alert.id}",
        content={"kind": kind.value, "drill": drill, "with_trip": trip is not None},
        at=now,
    )
    await session.flush()
    return alert


async def raise_alert(
    session: AsyncSession,
    *,
    clock: Clock,
    kind: Literal["sos", "ride_check"],
    account_id: uuid.UUID,
    role: Role,
    trip_id: uuid.UUID | None,
    position: tuple[float, float] | None,
    detail: str | None,
    drill: bool = False,
) -> uuid.UUID:
    """Records an alert for the operators' queue and answers its id; the caller commits.

    `kind` is `sos` (the button) or `ride_check` (an `Everything OK?` answered `help`, or not
    answered in time); `account_id` and `role` are the person it is raised by or for, who must
    be a party to `trip_id` if one is given (else `403 not_your_trip`); `position` is
    `(lat, lon)`. A `drill` is recorded and answered as resolved at once, never queued."""
    trip = None
    if trip_id is not None:
        trip = await load(session, trip_id)
        _party(trip, role, account_id)
    alert = await record(
        session,
        now=clock(),
        kind=AlertKind(kind),
        account_id=account_id,
        role=role,
        trip=trip,
        position=position,
        detail=detail,
        drill=drill,
    )
    return alert.id


async def _stored(session: AsyncSession, alert_id: uuid.UUID) -> SafetyAlert:
    alert = await session.scalar(
        select(SafetyAlert)
        .where(SafetyAlert.id == alert_id)
        .execution_options(populate_existing=True)
    )
    if alert is None:
        raise AlertNotFound(f"No safety alert or case {alert_id}")
    return alert


async def _refusal(session: AsyncSession, alert_id: uuid.UUID) -> Exception:
    """Why a conditional update changed nothing: gone, a drill, resolved, or taken already."""
    alert = await _stored(session, alert_id)
    if alert.resolved_at is not None:
        return AlertResolved(f"It was resolved at {alert.resolved_at.isoformat()}")
    return AlertAlreadyAcknowledged(
        "Another person acknowledged it"
        + (f" at {alert.acknowledged_at.isoformat()}" if alert.acknowledged_at else "")
    )


async def acknowledge(
    session: AsyncSession, *, alert_id: uuid.UUID, operator_id: uuid.UUID | None, now: datetime
) -> SafetyAlert:
    """A person takes the alert: exactly one of two at once wins (one conditional UPDATE), the
    other is refused `409 alert_already_acknowledged`. The time it took is counted against the
    promise the alert was raised under. The caller commits."""
    alert = await session.scalar(
        update(SafetyAlert)
        .where(
            SafetyAlert.id == alert_id,
            SafetyAlert.acknowledged_at.is_(None),
            SafetyAlert.resolved_at.is_(None),
        )
        .values(acknowledged_at=now, acknowledged_by=operator_id)
        .returning(SafetyAlert)
        .execution_options(populate_existing=True)
    )
    if alert is None:
        raise await _refusal(session, alert_id)
    ack_ms = round((now - alert.raised_at).total_seconds() * 1000)
    await audit.append(
        session=session,
        kind="safety.acknowledged",
        subject=f"safety_alert:{alert.id}",
        content={"ack_ms": ack_ms, "within": ack_ms <= alert.ack_within_s * 1000},
        at=now,
    )
    return alert


async def add_note(
    session: AsyncSession,
    *,
    alert_id: uuid.UUID,
    author_id: uuid.UUID | None,
    text: str,
    now: datetime,
) -> SafetyAlertNote:
    """An operator's note (kept with the alert, never in the audit log: only that one was
    written). Notes may follow a resolution. The caller commits."""
    await _stored(session, alert_id)
    note = SafetyAlertNote(alert_id=alert_id, author_id=author_id, text=text, at=now)
    session.add(note)
    await audit.append(
        session=session,
        kind="safety.noted",
        subject=f"safety_alert:{alert_id}",
        content={},
        at=now,
    )
    await session.flush()
    return note


async def resolve(
    session: AsyncSession,
    *,
    alert_id: uuid.UUID,
    operator_id: uuid.UUID | None,
    outcome: Literal["real", "false_alarm", "drill"],
    note: str | None,
    now: datetime,
) -> SafetyAlert:
    """Closes the alert or case with its outcome (and a note). One not yet acknowledged is
    acknowledged by the same person now. A `false_alarm` is an outcome, never a mark against the
    person who raised it: nothing reads it but the counts. The caller commits."""
    alert = await session.scalar(
        update(SafetyAlert)
        .where(SafetyAlert.id == alert_id, SafetyAlert.resolved_at.is_(None))
        .values(
            resolved_at=now,
            resolved_by=operator_id,
            outcome=outcome,
            acknowledged_at=func.coalesce(SafetyAlert.acknowledged_at, now),
            acknowledged_by=func.coalesce(SafetyAlert.acknowledged_by, operator_id),
        )
        .returning(SafetyAlert)
        .execution_options(populate_existing=True)
    )
    if alert is None:
        raise await _refusal(session, alert_id)
    await audit.append(
        session=session,
        kind="safety.resolved",
        subject=f"safety_alert:{alert.id}",
        content={"outcome": outcome},
        at=now,
    )
    if note:
        await add_note(session, alert_id=alert_id, author_id=operator_id, text=note, now=now)
    return alert


async def record_position(
    session: AsyncSession,
    *,
    alert_id: uuid.UUID,
    account_id: uuid.UUID,
    role: Role,
    lat: float,
    lon: float,
    now: datetime,
) -> bool:
    """A position the raiser's app sent while the alert is open: stored (answers True) unless
    the last one is under MIN_POSITION_GAP old. Anyone but the raiser is told the alert does not
    exist; a resolved alert is `409 alert_resolved` (the app stops sending). The caller commits.
    Positions anywhere are taken, even outside the service area: a person in danger may be."""
    alert = await session.get(SafetyAlert, alert_id)
    if alert is None or alert.raised_by_id != account_id or alert.raised_by_role != role:
        raise AlertNotYours(f"No safety alert {alert_id} of yours")
    if alert.resolved_at is not None:
        raise AlertResolved("The alert is resolved: stop sending positions")
    last = await session.scalar(
        select(func.max(SafetyAlertPosition.at)).where(
            SafetyAlertPosition.alert_id == alert_id, SafetyAlertPosition.source == "raiser"
        )
    )
    if last is not None and now - last < MIN_POSITION_GAP:
        return False
    session.add(SafetyAlertPosition(alert_id=alert_id, source="raiser", lat=lat, lon=lon, at=now))
    await session.flush()
    return True


async def _views(session: AsyncSession, rows: list[SafetyAlert], now: datetime) -> list[AlertOut]:
    """The operators' view of rows, with each one's newest positions and its notes: two queries
    for any number of rows (a queue of a hundred is read at once)."""
    ids = [row.id for row in rows]
    if not ids:
        return []
    newest = (
        func.row_number()
        .over(
            partition_by=SafetyAlertPosition.alert_id,
            order_by=(SafetyAlertPosition.at.desc(), SafetyAlertPosition.id.desc()),
        )
        .label("newest")
    )
    ranked = (
        select(SafetyAlertPosition.id, newest)
        .where(SafetyAlertPosition.alert_id.in_(ids))
        .subquery()
    )
    positions: dict[uuid.UUID, list[SafetyAlertPosition]] = {i: [] for i in ids}
    for position in await session.scalars(
        select(SafetyAlertPosition)
        .join(ranked, ranked.c.id == SafetyAlertPosition.id)
        .where(ranked.c.newest <= POSITIONS_SHOWN)
        .order_by(SafetyAlertPosition.at.desc(), SafetyAlertPosition.id.desc())
    ):
        positions[position.alert_id].append(position)
    notes: dict[uuid.UUID, list[SafetyAlertNote]] = {i: [] for i in ids}
    for note in await session.scalars(
        select(SafetyAlertNote)
        .where(SafetyAlertNote.alert_id.in_(ids))
        .order_by(SafetyAlertNote.at, SafetyAlertNote.id)
    ):
        notes[note.alert_id].append(note)
    return [
        AlertOut.of(row, now=now, positions=positions[row.id], notes=notes[row.id]) for row in rows
    ]


async def out(session: AsyncSession, alert: SafetyAlert, now: datetime) -> AlertOut:
    """The operators' view of one row, with its newest positions and its notes."""
    return (await _views(session, [alert], now))[0]


async def get(session: AsyncSession, *, alert_id: uuid.UUID, now: datetime) -> AlertOut:
    return await out(session, await _stored(session, alert_id), now)


Group = Literal["alerts", "cases", "all"]


async def queue(
    session: AsyncSession,
    *,
    now: datetime,
    open_only: bool,
    group: Group = "all",
    limit: int = 100,
) -> list[AlertOut]:
    """The operators' queue: open rows oldest first (the longest-waiting on top), or every row
    newest first. Drills are never in it."""
    query = select(SafetyAlert).where(SafetyAlert.drill.is_(False))
    if group == "alerts":
        query = query.where(SafetyAlert.kind.in_([k.value for k in ALERT_KINDS]))
    elif group == "cases":
        query = query.where(SafetyAlert.kind.in_([k.value for k in CASE_KINDS]))
    if open_only:
        query = query.where(SafetyAlert.resolved_at.is_(None)).order_by(SafetyAlert.raised_at)
    else:
        query = query.order_by(SafetyAlert.raised_at.desc())
    rows = list(await session.scalars(query.limit(limit)))
    return await _views(session, rows, now)


@dataclass(frozen=True)
class Alarm:
    """What /ops sounds for: alerts nobody has acknowledged yet."""

    unacknowledged: int
    oldest_at: datetime | None


async def alarm(session: AsyncSession) -> Alarm:
    row = (
        await session.execute(
            select(func.count(), func.min(SafetyAlert.raised_at)).where(
                SafetyAlert.drill.is_(False),
                SafetyAlert.kind.in_([k.value for k in ALERT_KINDS]),
                SafetyAlert.acknowledged_at.is_(None),
                SafetyAlert.resolved_at.is_(None),
            )
        )
    ).one()
    return Alarm(unacknowledged=int(row[0]), oldest_at=row[1])


async def status_for_raiser(
    session: AsyncSession, *, alert_id: uuid.UUID, account_id: uuid.UUID, role: Role
) -> SafetyAlert:
    """The raiser's own alert (anyone else: 404)."""
    alert = await session.get(SafetyAlert, alert_id)
    if alert is None or alert.raised_by_id != account_id or alert.raised_by_role != role:
        raise AlertNotYours(f"No safety alert {alert_id} of yours")
    return alert
