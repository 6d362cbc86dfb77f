"""The ride check at work (docs/safety.md, "Ride check"): the sweep that feeds each watched trip's
new positions to the detectors (`dispatch.safety.ridecheck`), records what fired and asks both
parties; the answers; and `escalate`, the one place a check goes to a person.

Positions arrive on the driver sockets and reach the database in the ingest's flushes
(`location_trail_point`), on whichever worker holds the socket. The sweep reads them from there,
on any worker: each watch row is taken `FOR UPDATE SKIP LOCKED`, so two workers never feed one
trip twice, and its state is saved in the transaction that records its checks.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import service as bargaining_service
from bargaining.terms import SafetyTerms
from coop import pubsub
from coop.db import sql_list
from coop.redis_client import Redis
from dispatch.safety import alerts, ridecheck
from dispatch.safety.ridecheck_frames import Answer, SafetyCheckFrame
from dispatch.safety.ridecheck_models import CheckOutcome, RideCheck, RideWatch
from dispatch.states import TripStatus

logger = logging.getLogger("coop.safety")

# Watches handled per transaction of a sweep (a sweep goes through all of them, batch by batch).
SWEEP_BATCH = 500
# Every worker sweeps (every few seconds, dispatch.realtime.ridecheck_socket): a trip another
# worker's sweep went through less than this long ago is left for the next, so N workers share
# the trips rather than each feeding all of them.
REVISIT_AFTER_S = 2.5

# Watched from the driver's arrival: `not_started` counts from it, the others from the start.
# (A trip whose arrival, start and end all fall between two sweeps, seconds apart, is not
# watched: the query stays on the partial index of open trips, never the whole table.)
WATCHED = frozenset({TripStatus.arrived, TripStatus.in_progress})
_NEW_WATCHES = text(
    f"""
    INSERT INTO safety_ride_watch (trip_id, state, last_point_id, closed, updated_at)
    SELECT t.id, CAST('{{}}' AS jsonb), 0, false, :never FROM trip t
    WHERE t.status IN {sql_list(WATCHED)}
    ON CONFLICT (trip_id) DO NOTHING
    """
)

_WATCHED = text(
    """
    SELECT w.trip_id, w.state, w.last_point_id, t.status, t.rider_id, t.driver_id,
           t.arrived_at, t.started_at, t.ended_at,
           ST_Y(t.dropoff::geometry), ST_X(t.dropoff::geometry),
           ST_Y(t.pickup::geometry), ST_X(t.pickup::geometry)
    FROM safety_ride_watch w JOIN trip t ON t.id = w.trip_id
    WHERE NOT w.closed AND w.trip_id > :after AND w.updated_at <= :visited_before
    ORDER BY w.trip_id
    LIMIT :batch
    FOR UPDATE OF w SKIP LOCKED
    """
)

_NEW_POINTS = text(
    """
    SELECT p.trip_id, p.id, ST_Y(p.position::geometry), ST_X(p.position::geometry),
           p.recorded_at
    FROM unnest(CAST(:trip_ids AS uuid[]), CAST(:after AS bigint[])) AS u(trip_id, after)
    JOIN location_trail_point p ON p.trip_id = u.trip_id AND p.id > u.after
    ORDER BY p.trip_id, p.recorded_at, p.id
    """
)


@dataclass
class SweepReport:
    watched: int = 0
    points: int = 0
    asked: list[RideCheck] = field(default_factory=list)
    escalated: list[RideCheck] = field(default_factory=list)


def question(check: RideCheck, answered: Answer | None = None) -> SafetyCheckFrame:
    return SafetyCheckFrame(
        type="safety_check",
        check_id=check.id,
        trip_id=check.trip_id,
        detector=check.detector,  # a Detector value, validated by the frame
        asked_at=check.fired_at,
        answer_by=check.answer_by,
        answered=answered,
    )


async def terms_in_force(*, session: AsyncSession, now: datetime) -> SafetyTerms:
    agreement = await bargaining_service.in_force(session=session, at=now)
    return agreement.terms.safety


async def sweep(*, session: AsyncSession, now: datetime) -> SweepReport:
    """Feeds the watched trips' new positions to the detectors, records the checks that fired,
    and escalates those unanswered past `answer_by`; commits each batch of `SWEEP_BATCH` trips.
    The caller puts the new checks to the parties (`ask`) once this returns."""
    terms = await terms_in_force(session=session, now=now)
    limits = ridecheck.Thresholds.of(terms)
    report = SweepReport()
    # A new watch counts as never visited.
    await session.execute(_NEW_WATCHES, {"never": now - timedelta(days=1)})
    after = uuid.UUID(int=0)
    while True:
        rows = (
            await session.execute(
                _WATCHED,
                {
                    "batch": SWEEP_BATCH,
                    "after": after,
                    "visited_before": now - timedelta(seconds=REVISIT_AFTER_S),
                },
            )
        ).all()
        await _sweep_batch(session, rows, terms, limits, now, report)
        await session.commit()
        if len(rows) < SWEEP_BATCH:
            break
        after = rows[-1][0]
    report.escalated = await _escalate_due(session=session, now=now)
    await session.commit()
    return report


async def _sweep_batch(
    session: AsyncSession,
    rows: Sequence[Any],
    terms: SafetyTerms,
    limits: ridecheck.Thresholds,
    now: datetime,
    report: SweepReport,
) -> None:
    report.watched += len(rows)
    points: dict[uuid.UUID, list[tuple[int, float, float, datetime]]] = {}
    if rows:
        found = await session.execute(
            _NEW_POINTS,
            {"trip_ids": [row[0] for row in rows], "after": [row[2] for row in rows]},
        )
        for trip_id, point_id, lat, lon, recorded_at in found:
            points.setdefault(trip_id, []).append((point_id, lat, lon, recorded_at))
    saved: list[dict[str, Any]] = []
    for row in rows:
        (trip_id, state, last_point_id, status, rider_id, driver_id) = row[:6]
        arrived_at, started_at, ended_at = row[6:9]
        destination, pickup = (row[9], row[10]), (row[11], row[12])
        watch = ridecheck.Watch.from_json(state) if state else ridecheck.Watch()
        fired: list[ridecheck.Firing] = []
        new_points = points.get(trip_id, [])
        report.points += len(new_points)
        for point_id, lat, lon, recorded_at in new_points:
            last_point_id = max(last_point_id, point_id)
            under_way = started_at is not None and recorded_at >= started_at
            if under_way and (ended_at is None or recorded_at <= ended_at):
                fired += ridecheck.observe(
                    watch, limits, lat=lat, lon=lon, at=recorded_at, destination=destination
                )
        closed = status not in WATCHED
        if status == TripStatus.arrived and arrived_at is not None:
            late = ridecheck.not_started(
                watch, limits, arrived_at=arrived_at, now=now, position=pickup
            )
            fired += [late] if late is not None else []
        if status == TripStatus.completed and ended_at is not None:
            last = (
                (watch.last_lat, watch.last_lon)
                if watch.last_lat is not None and watch.last_lon is not None
                else None
            )
            far = ridecheck.ended(
                watch, limits, at=ended_at, position=last, destination=destination
            )
            fired += [far] if far is not None else []
        saved.append(
            {
                "trip_id": trip_id,
                # Nothing kept of a trip's positions once it is no longer watched.
                "state": {} if closed else watch.to_json(),
                "last_point_id": last_point_id,
                "closed": closed,
                "updated_at": now,
            }
        )
        for firing in fired:
            if driver_id is None:
                continue  # never: a watched trip has a driver (a check constraint)
            check = RideCheck(
                id=uuid.uuid4(),
                trip_id=trip_id,
                rider_id=rider_id,
                driver_id=driver_id,
                detector=firing.detector.value,
                fired_at=now,
                lat=firing.lat,
                lon=firing.lon,
                detail=firing.detail,
                answer_by=now + timedelta(seconds=terms.check_answer_s),
                outcome=CheckOutcome.open.value,
            )
            session.add(check)
            report.asked.append(check)
    if saved:
        # One statement for the batch (an executemany by primary key), not one per trip.
        await session.execute(update(RideWatch), saved)
    await session.flush()


async def ask(redis: Redis, checks: list[RideCheck]) -> None:
    """Puts each new check to both parties over their sockets (after the commit that recorded
    it). A party whose socket is away reads it on reconnecting (`open_questions`)."""
    frames: list[tuple[str, SafetyCheckFrame]] = []
    for check in checks:
        frame = question(check)
        frames.append((pubsub.rider_channel(check.rider_id), frame))
        frames.append((pubsub.driver_channel(check.driver_id), frame))
    await pubsub.publish_many(redis, frames)


async def _escalate_due(*, session: AsyncSession, now: datetime) -> list[RideCheck]:
    due = list(
        await session.scalars(
            select(RideCheck)
            .where(RideCheck.outcome == CheckOutcome.open.value, RideCheck.answer_by <= now)
            .order_by(RideCheck.answer_by)
            .limit(SWEEP_BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    for check in due:
        await escalate(session, check, reason=CheckOutcome.unanswered, now=now)
    return due


async def escalate(
    session: AsyncSession,
    check: RideCheck,
    *,
    reason: CheckOutcome,
    now: datetime,
    by: Literal["rider", "driver"] | None = None,
) -> None:
    """Sends a check to a person: a party answered `help` (an SOS), or not both parties answered
    `ok` by `answer_by`. Recorded on the check, in the caller's transaction (`session`, which
    the caller commits).

    The check becomes an alert in the operators' queue (`dispatch.safety.alerts.raise_alert`),
    in the same transaction: raised by the party who answered `help` (`by`), or for the rider
    when nobody answered in time. One alert per check, and a second for a `help` that comes
    after the check went to the queue unanswered (someone is now asking)."""
    check.outcome = reason.value
    earlier = check.escalation
    if check.escalated_at is None or reason is CheckOutcome.help:
        check.escalated_at = now
        check.escalation = reason.value
        if earlier is None or (reason is CheckOutcome.help and earlier != reason.value):
            role: Literal["rider", "driver"] = by or "rider"
            position = (
                (check.lat, check.lon) if check.lat is not None and check.lon is not None else None
            )
            await alerts.raise_alert(
                session,
                clock=lambda: now,
                kind="ride_check",
                account_id=check.driver_id if role == "driver" else check.rider_id,
                role=role,
                trip_id=check.trip_id,
                position=position,
                detail=f"ride check {check.detector}: {reason.value}",
            )
    logger.warning(
        "ride check %s (%s) on trip %s escalated: %s%s",
        check.id,
        check.detector,
        check.trip_id,
        reason.value,
        f" (the {by})" if by is not None else "",
    )


class UnknownCheck(LookupError):
    """No check of that id was put to this account."""


class AlreadyAnswered(ValueError):
    """This party has answered this check already."""


async def answer(
    *,
    session: AsyncSession,
    check_id: uuid.UUID,
    rider_id: uuid.UUID | None = None,
    driver_id: uuid.UUID | None = None,
    answer: Answer,
    now: datetime,
) -> RideCheck:
    """Records a party's answer (exactly one of `rider_id`, `driver_id`); commits. `help`
    escalates at once, even after the check went unanswered; `ok` from both settles it. Someone
    who is not a party to the check's trip learns nothing of it: `UnknownCheck`, as for an id
    that does not exist."""
    check = await session.scalar(
        select(RideCheck).where(RideCheck.id == check_id).with_for_update()
    )
    if check is None or not (
        (rider_id is not None and check.rider_id == rider_id)
        or (driver_id is not None and check.driver_id == driver_id)
    ):
        raise UnknownCheck(check_id)
    if rider_id is not None:
        if check.rider_answer is not None:
            raise AlreadyAnswered(check_id)
        check.rider_answer, check.rider_answered_at = answer, now
    else:
        if check.driver_answer is not None:
            raise AlreadyAnswered(check_id)
        check.driver_answer, check.driver_answered_at = answer, now
    if answer == "help":
        await escalate(
            session,
            check,
            reason=CheckOutcome.help,
            now=now,
            by="rider" if rider_id is not None else "driver",
        )
    elif (
        check.outcome == CheckOutcome.open.value
        and check.rider_answer == "ok"
        and check.driver_answer == "ok"
    ):
        check.outcome = CheckOutcome.ok.value
    await session.commit()
    return check


async def open_questions(
    *,
    session: AsyncSession,
    now: datetime,
    rider_id: uuid.UUID | None = None,
    driver_id: uuid.UUID | None = None,
) -> list[SafetyCheckFrame]:
    """The checks still waiting for this party's answer, for a socket that (re)connects."""
    query = select(RideCheck).where(
        RideCheck.outcome == CheckOutcome.open.value, RideCheck.answer_by > now
    )
    if rider_id is not None:
        query = query.where(RideCheck.rider_id == rider_id, RideCheck.rider_answer.is_(None))
    else:
        query = query.where(RideCheck.driver_id == driver_id, RideCheck.driver_answer.is_(None))
    return [question(check) for check in await session.scalars(query.order_by(RideCheck.fired_at))]
