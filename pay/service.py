"""Drivers' statements of their pay periods, the public pay report, and patronage measures.

Every read first closes the periods that are due (`pay.closing`), so a statement or a report is
never older than the stored state it is read from.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bargaining import service as bargaining_service
from coop.money import round_cents
from dispatch.trips.models import Trip
from dispatch.trips.rules import pays_its_driver, was_ridden
from pay import arithmetic
from pay.closing import amounts_of, engaged_of, grid_of, line_of, unposted_lines
from pay.closing import close_due as close_due  # also pay.lifecycle's, from here
from pay.exceptions import NotAPeriodStart, PeriodNotFound
from pay.models import PayPeriod, PayStatement, PayStatementLine

# The public report leaves out a period with fewer drivers than this: too few to hide anyone.
MIN_DRIVERS_REPORTED = 5


# --- statements --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    period: PayPeriod
    status: str  # open | closed
    currency: str
    floor_per_hour: Decimal
    floor_version: int
    lines: Sequence[PayStatementLine]
    totals: arithmetic.Totals


def _stored_totals(row: PayStatement) -> arithmetic.Totals:
    return arithmetic.Totals(
        trips=row.trips,
        fares_total=row.fares_total,
        commission_total=row.commission_total,
        earnings_total=row.earnings_total,
        cancellation_fees_total=row.cancellation_fees_total,
        engaged_seconds=row.engaged_seconds,
        floor_due=row.floor_due,
        top_up=row.top_up,
        pay_total=row.pay_total,
    )


async def _open_lines(
    session: AsyncSession, driver_id: uuid.UUID, period: PayPeriod
) -> list[PayStatementLine]:
    """What the open period's statement holds so far (not written: it may still grow)."""
    trips = list(
        await session.scalars(
            select(Trip)
            .where(Trip.driver_id == driver_id, *unposted_lines(period.ends_at))
            .order_by(Trip.ended_at, Trip.id)
        )
    )
    engaged = await engaged_of(session, trips)
    return [line_of(trip, period.start_date, period.starts_at, engaged[trip.id]) for trip in trips]


async def _statement(
    session: AsyncSession,
    period: PayPeriod,
    driver_id: uuid.UUID,
    now: datetime,
    *,
    with_lines: bool = True,
) -> Statement:
    if period.closed_at is not None:
        assert period.floor_per_hour is not None and period.floor_version is not None
        lines: list[PayStatementLine] = []
        if with_lines:
            lines = list(
                await session.scalars(
                    select(PayStatementLine)
                    .where(
                        PayStatementLine.period_start == period.start_date,
                        PayStatementLine.driver_id == driver_id,
                    )
                    .order_by(PayStatementLine.ended_at, PayStatementLine.trip_id)
                )
            )
        row = await session.get(PayStatement, (period.start_date, driver_id))
        totals = (
            _stored_totals(row)
            if row is not None
            else arithmetic.totals([], floor_per_hour=period.floor_per_hour)
        )
        return Statement(
            period=period,
            status="closed",
            currency=period.currency or "",
            floor_per_hour=period.floor_per_hour,
            floor_version=period.floor_version,
            lines=lines,
            totals=totals,
        )
    # Open: the floor of the version in force now (the one at the period's end decides).
    agreement = await bargaining_service.in_force(session=session, at=now)
    floor = agreement.terms.pay.engaged_floor_per_hour
    lines = await _open_lines(session, driver_id, period)
    return Statement(
        period=period,
        status="open",
        currency=agreement.terms.currency,
        floor_per_hour=floor,
        floor_version=agreement.version,
        lines=lines,
        totals=arithmetic.totals([amounts_of(line) for line in lines], floor_per_hour=floor),
    )


async def _is_grid_start(session: AsyncSession, day: date) -> bool:
    """Whether `day` starts a period on the calendar of the agreement in force then."""
    noon = datetime.combine(day, time(12), tzinfo=UTC)
    # Before the founding version nothing was in force, yet such a day is still asked about:
    # its calendar is the founding one, so a Monday then is a period start that never existed
    # (404), not a missing agreement (503).
    at = max(noon, bargaining_service.FOUNDING_EFFECTIVE_FROM)
    return grid_of(await bargaining_service.in_force(session=session, at=at)).is_start(day)


async def statement(
    *, session: AsyncSession, driver_id: uuid.UUID, period_start: date, now: datetime
) -> Statement:
    """The driver's statement of one period (zeros where they had nothing in it)."""
    await close_due(session=session, now=now)
    period = await session.get(PayPeriod, period_start)
    if period is None:
        if not await _is_grid_start(session, period_start):
            raise NotAPeriodStart(
                f"{period_start.isoformat()} is not the first day of a pay period "
                "(periods start on a Monday; see GET /v1/drivers/me/statements)",
                field="path.period_start",
                value=period_start.isoformat(),
            )
        raise PeriodNotFound(
            f"There is no pay period starting {period_start.isoformat()}: it is before the "
            "first period or after the current one"
        )
    return await _statement(session, period, driver_id, now)


async def statements(
    *,
    session: AsyncSession,
    driver_id: uuid.UUID,
    member_since: datetime,
    now: datetime,
    limit: int,
    after: datetime | None = None,
) -> list[Statement]:
    """The driver's periods since they joined, newest first (open one included); with `after`
    (a page's cursor), those that start before it."""
    await close_due(session=session, now=now)
    query = (
        select(PayPeriod)
        .where(PayPeriod.ends_at > member_since, PayPeriod.starts_at <= now)
        .order_by(PayPeriod.starts_at.desc())
        .limit(limit)
    )
    if after is not None:
        query = query.where(PayPeriod.starts_at < after)
    periods = list(await session.scalars(query))
    return [
        await _statement(session, period, driver_id, now, with_lines=False) for period in periods
    ]


# --- the public pay report ---------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodReport:
    period: PayPeriod
    drivers: int
    suppressed: bool
    trips: int
    fares_total: Decimal
    commission_total: Decimal
    take_rate_percent: Decimal | None
    cancellation_fees_total: Decimal
    top_ups_total: Decimal
    engaged_hours: Decimal
    earnings_per_hour_median: Decimal | None
    earnings_per_hour_p10: Decimal | None
    pay_per_hour_median: Decimal | None
    pay_per_hour_p10: Decimal | None


def report_of(period: PayPeriod, rows: Sequence[PayStatement]) -> PeriodReport:
    """One closed period's figures; those of fewer than five drivers are withheld."""
    zero = arithmetic.ZERO
    drivers = len(rows)
    if drivers < MIN_DRIVERS_REPORTED:
        return PeriodReport(
            period, drivers, True, 0, zero, zero, None, zero, zero, zero, None, None, None, None
        )
    fares = sum((r.fares_total for r in rows), zero)
    commission = sum((r.commission_total for r in rows), zero)
    earned = [
        rate
        for r in rows
        if (
            rate := arithmetic.per_hour(
                r.earnings_total + r.cancellation_fees_total, r.engaged_seconds
            )
        )
        is not None
    ]
    paid = [
        rate
        for r in rows
        if (rate := arithmetic.per_hour(r.pay_total, r.engaged_seconds)) is not None
    ]
    tenth = Decimal("0.1")
    return PeriodReport(
        period=period,
        drivers=drivers,
        suppressed=False,
        trips=sum(r.trips for r in rows),
        fares_total=fares,
        commission_total=commission,
        take_rate_percent=arithmetic.percent(commission, fares),
        cancellation_fees_total=sum((r.cancellation_fees_total for r in rows), zero),
        top_ups_total=sum((r.top_up for r in rows), zero),
        engaged_hours=round_cents(Decimal(sum(r.engaged_seconds for r in rows)) / 3600),
        earnings_per_hour_median=arithmetic.median(earned) if earned else None,
        earnings_per_hour_p10=arithmetic.nearest_rank(earned, tenth) if earned else None,
        pay_per_hour_median=arithmetic.median(paid) if paid else None,
        pay_per_hour_p10=arithmetic.nearest_rank(paid, tenth) if paid else None,
    )


async def report(
    *,
    session: AsyncSession,
    start: date | None,
    end: date | None,
    now: datetime,
    limit: int | None = None,
    after: datetime | None = None,
) -> list[PeriodReport]:
    """Closed periods starting within [start, end], oldest first: at most `limit` of them,
    those starting after `after` (a page's cursor)."""
    await close_due(session=session, now=now)
    query = select(PayPeriod).where(PayPeriod.closed_at.is_not(None)).order_by(PayPeriod.starts_at)
    if start is not None:
        query = query.where(PayPeriod.start_date >= start)
    if end is not None:
        query = query.where(PayPeriod.start_date <= end)
    if after is not None:
        query = query.where(PayPeriod.starts_at > after)
    if limit is not None:
        query = query.limit(limit)
    periods = list(await session.scalars(query))
    rows: dict[date, list[PayStatement]] = defaultdict(list)
    if periods:
        for row in await session.scalars(
            select(PayStatement).where(
                PayStatement.period_start.in_([p.start_date for p in periods])
            )
        ):
            rows[row.period_start].append(row)
    return [report_of(period, rows[period.start_date]) for period in periods]


# --- the patronage measure (bargaining's dividend reads it through app.state) --------------------


async def patronage_measures(
    session: AsyncSession, start: datetime, end: datetime, basis: str
) -> dict[uuid.UUID, Decimal]:
    """Each driver's patronage over trips that ended in [start, end): engaged seconds, earnings
    (trip earnings and cancellation fees received) or completed trips."""
    window = [pays_its_driver(), Trip.ended_at >= start, Trip.ended_at < end]
    measure: ColumnElement[Any]
    if basis == "engaged_seconds":
        # The floor's engaged time, bounded the same way: idle hours raise no one's share.
        trips = list(await session.scalars(select(Trip).where(*window)))
        engaged = await engaged_of(session, trips)
        totals: dict[uuid.UUID, Decimal] = defaultdict(Decimal)
        for trip in trips:
            assert trip.driver_id is not None
            totals[trip.driver_id] += engaged[trip.id]
        return dict(totals)
    if basis == "driver_earnings":
        measure = func.sum(
            func.coalesce(Trip.driver_earnings, 0) + func.coalesce(Trip.cancellation_fee, 0)
        )
    elif basis == "trips":
        measure = func.count().filter(was_ridden())
    else:
        raise ValueError(f"unknown patronage basis {basis!r}")
    rows = await session.execute(
        select(Trip.driver_id, measure).where(*window).group_by(Trip.driver_id)
    )
    return {row[0]: Decimal(row[1] or 0) for row in rows if row[0] is not None}
