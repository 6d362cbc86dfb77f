"""Pay periods, their automatic close, statements, the public pay report, and patronage measures.

Periods form a chain: each starts where the previous one ended, on the calendar of the agreement
in force at that moment (`periods.Grid`). A period closes by itself once its end has passed:
every read and a background sweep first close what is due, from stored state only (`ends_at`,
`closed_at`), under a transaction-scoped advisory lock and a conditional update, so a restart
neither skips a close nor repeats one and two workers never close the same period twice.

Closing posts every trip that is not on a statement yet and ended before the period's end:
completed trips and cancellations that paid the driver a fee. A trip whose record arrived after
its own period had closed is posted on the next period to close, marked `adjustment`. A posted
line's primary key is its trip, so no trip is ever paid twice; statements and lines are never
changed once written (database triggers refuse it).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bargaining import service as bargaining_service
from bargaining.models import AgreementVersion
from bargaining.terms import DispatchTerms
from coop import audit
from dispatch.trips.models import Offer, OfferStatus, Trip, TripStatus
from dispatch.trips.rules import pays_its_driver
from pay import arithmetic
from pay import engaged as engaged_time
from pay.models import LineKind, PayPeriod, PayStatement, PayStatementLine
from pay.periods import Grid

logger = logging.getLogger("coop.pay")

# pg_advisory_xact_lock key ("cooppayp"): periods are created and closed one at a time.
PERIODS_LOCK_KEY = 0x636F6F7070617970
AUDIT_PERIOD_CLOSED = "pay.period_closed"
_INSTANT = timedelta(microseconds=1)


def grid_of(agreement: AgreementVersion) -> Grid:
    pay = agreement.terms.pay
    return Grid(period_days=pay.period_days, timezone=pay.timezone)


# --- the chain of periods ----------------------------------------------------------------------


async def _next_period(
    session: AsyncSession, previous: PayPeriod | None, now: datetime
) -> PayPeriod:
    """The period after `previous` (or the one holding `now` for the first), on the calendar of
    the agreement in force when it starts. After a change of calendar the first period runs from
    the previous end to the new calendar's next start (at least a day)."""
    at = previous.ends_at if previous is not None else now
    grid = grid_of(await bargaining_service.in_force(session=session, at=at))
    if previous is None:
        start_date, starts_at, ends_at = grid.period_of(now)
    else:
        starts_at = previous.ends_at
        start_date = grid.local_date(starts_at)
        end_date = grid.start_after(start_date)
        ends_at = grid.midnight(end_date)
        while ends_at - starts_at < timedelta(days=1):
            end_date += timedelta(days=grid.period_days)
            ends_at = grid.midnight(end_date)
    period = PayPeriod(
        start_date=start_date,
        starts_at=starts_at,
        ends_at=ends_at,
        timezone=grid.timezone,
        period_days=grid.period_days,
    )
    session.add(period)
    await session.flush()
    return period


async def _lock(session: AsyncSession) -> None:
    await session.execute(select(func.pg_advisory_xact_lock(PERIODS_LOCK_KEY)))


async def _last_period(session: AsyncSession) -> PayPeriod | None:
    period: PayPeriod | None = await session.scalar(
        select(PayPeriod)
        .order_by(PayPeriod.starts_at.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )
    return period


async def ensure_periods(*, session: AsyncSession, now: datetime) -> None:
    """Creates the periods up to the one holding `now`; commits."""
    last = await _last_period(session)
    if last is not None and last.ends_at > now:
        await session.commit()
        return
    await _lock(session)
    last = await _last_period(session)
    if last is None:
        # The first period holds the installation (the founding version's writing), so every
        # trip ever driven falls in a period.
        installed = await session.scalar(select(func.min(AgreementVersion.created_at)))
        last = await _next_period(session, None, min(installed or now, now))
    while last.ends_at <= now:
        last = await _next_period(session, last, now)
    await session.commit()


def unposted_lines(end: datetime) -> list[ColumnElement[bool]]:
    """Trips that pay their driver and are not on any statement yet, ended before `end`."""
    posted = exists().where(PayStatementLine.trip_id == Trip.id)
    return [pays_its_driver(), Trip.ended_at < end, ~posted]


async def engaged_of(session: AsyncSession, trips: Sequence[Trip]) -> dict[uuid.UUID, int]:
    """Each trip's engaged seconds, its legs bounded by its own agreement version's terms and
    its accepted offer's pickup estimate (`pay.engaged`)."""
    if not trips:
        return {}
    rows = await session.execute(
        select(Offer.trip_id, Offer.pickup_eta_s).where(
            Offer.trip_id.in_([trip.id for trip in trips]),
            Offer.status == OfferStatus.accepted,
        )
    )
    etas: dict[uuid.UUID, int] = dict(rows.all())
    terms: dict[int, DispatchTerms] = {}
    engaged: dict[uuid.UUID, int] = {}
    for trip in trips:
        assert trip.assigned_at is not None and trip.ended_at is not None
        if trip.agreement_version not in terms:
            version = await bargaining_service.get_version(
                session=session, version=trip.agreement_version
            )
            terms[trip.agreement_version] = version.terms.dispatch
        engaged[trip.id] = engaged_time.engaged_seconds(
            assigned_at=trip.assigned_at,
            arrived_at=trip.arrived_at,
            started_at=trip.started_at,
            ended_at=trip.ended_at,
            bounds=engaged_time.bounds_of(
                terms[trip.agreement_version],
                pickup_eta_s=etas.get(trip.id),
                quote_duration_s=int(trip.quote["duration_s"]),
            ),
        )
    return engaged


def line_of(trip: Trip, period: date, period_starts_at: datetime, engaged: int) -> PayStatementLine:
    assert trip.driver_id is not None and trip.assigned_at is not None
    assert trip.ended_at is not None
    zero = arithmetic.ZERO
    fare: Decimal | None = zero
    commission: Decimal | None = zero
    earnings: Decimal | None = zero
    fee: Decimal | None = zero
    if trip.status is TripStatus.completed:
        kind = LineKind.trip
        fare, commission, earnings = trip.fare_total, trip.coop_commission, trip.driver_earnings
    else:
        kind = LineKind.cancellation_fee
        fee = trip.cancellation_fee
    return PayStatementLine(
        trip_id=trip.id,
        period_start=period,
        driver_id=trip.driver_id,
        kind=kind,
        adjustment=trip.ended_at < period_starts_at,
        assigned_at=trip.assigned_at,
        ended_at=trip.ended_at,
        engaged_seconds=engaged,
        distance_m=trip.distance_m if kind is LineKind.trip else None,
        duration_s=trip.duration_s if kind is LineKind.trip else None,
        fare_total=fare or zero,
        commission=commission or zero,
        driver_earnings=earnings or zero,
        cancellation_fee=fee or zero,
        agreement_version=trip.agreement_version,
        currency=trip.currency,
    )


def amounts_of(line: PayStatementLine) -> arithmetic.LineAmounts:
    return arithmetic.LineAmounts(
        is_trip=line.kind is LineKind.trip,
        fare_total=line.fare_total,
        commission=line.commission,
        driver_earnings=line.driver_earnings,
        cancellation_fee=line.cancellation_fee,
        engaged_seconds=line.engaged_seconds,
    )


async def _close(session: AsyncSession, start_date: date, now: datetime) -> bool:
    """Closes one period if due and still open; answers whether this call closed it."""
    period = await session.scalar(
        select(PayPeriod)
        .where(PayPeriod.start_date == start_date)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if period is None or period.closed_at is not None or period.ends_at > now:
        return False
    floor_version = await bargaining_service.in_force(session=session, at=period.ends_at - _INSTANT)
    floor = floor_version.terms.pay.engaged_floor_per_hour
    trips = list(
        await session.scalars(
            select(Trip).where(*unposted_lines(period.ends_at)).order_by(Trip.ended_at, Trip.id)
        )
    )
    by_driver: dict[uuid.UUID, list[PayStatementLine]] = defaultdict(list)
    engaged = await engaged_of(session, trips)
    for trip in trips:
        line = line_of(trip, period.start_date, period.starts_at, engaged[trip.id])
        session.add(line)
        by_driver[line.driver_id].append(line)
    await session.flush()
    for driver_id, lines in by_driver.items():
        totals = arithmetic.totals([amounts_of(line) for line in lines], floor_per_hour=floor)
        session.add(
            PayStatement(
                period_start=period.start_date,
                driver_id=driver_id,
                trips=totals.trips,
                fares_total=totals.fares_total,
                commission_total=totals.commission_total,
                earnings_total=totals.earnings_total,
                cancellation_fees_total=totals.cancellation_fees_total,
                engaged_seconds=totals.engaged_seconds,
                floor_due=totals.floor_due,
                top_up=totals.top_up,
                pay_total=totals.pay_total,
            )
        )
    period.closed_at = now
    period.floor_version = floor_version.version
    period.floor_per_hour = floor
    period.currency = floor_version.terms.currency
    await session.flush()
    statements = list(
        await session.scalars(
            select(PayStatement).where(PayStatement.period_start == period.start_date)
        )
    )
    await audit.append(
        session=session,
        kind=AUDIT_PERIOD_CLOSED,
        subject=f"pay_period:{period.start_date.isoformat()}",
        content={
            "period_start": period.start_date.isoformat(),
            "starts_at": period.starts_at,
            "ends_at": period.ends_at,
            "floor_version": floor_version.version,
            "engaged_floor_per_hour": floor,
            "statements": len(statements),
            "lines": len(trips),
            "pay_total": sum((s.pay_total for s in statements), arithmetic.ZERO),
            "top_ups": sum((s.top_up for s in statements), arithmetic.ZERO),
        },
    )
    return True


async def close_due(*, session: AsyncSession, now: datetime) -> list[date]:
    """Creates the periods up to now and closes every one whose end has passed, oldest first;
    answers the start dates this call closed. Each close is its own transaction."""
    await ensure_periods(session=session, now=now)
    due = list(
        await session.scalars(
            select(PayPeriod.start_date)
            .where(PayPeriod.closed_at.is_(None), PayPeriod.ends_at <= now)
            .order_by(PayPeriod.starts_at)
        )
    )
    await session.commit()
    closed = []
    for start_date in due:
        await _lock(session)
        if await _close(session, start_date, now):
            closed.append(start_date)
        await session.commit()
    if closed:
        logger.info("pay periods closed: %s", ", ".join(d.isoformat() for d in closed))
    return closed
