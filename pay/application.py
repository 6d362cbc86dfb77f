"""Pay's application layer: what the API's routes and the co-op's pages both do.

Each function takes the caller (the principal, or the driver a check yielded), the session and
the clock's `now`, makes the checks that decide whether the caller may (a party to the trip,
the driver whose statement it is), and answers a read model (`pay.schemas`). The routes
(`pay.router`) and the pages (`server.web.pages`) are adapters over these functions.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from coop import paging
from coop.auth import Principal
from coop.errors import UnprocessableEntity
from coop.jurisdiction import Profile
from drivers.models import Driver
from pay import receipts, service
from pay.models import PayPeriod
from pay.schemas import (
    PayPeriodReportOut,
    PayReportOut,
    ReceiptOut,
    StatementOut,
    StatementSummaryOut,
)

T = TypeVar("T")
# A page of a list, and the cursor of the next page (None: this page is the last).
Page = tuple[list[T], str | None]


def _period_key(period: PayPeriod) -> tuple[datetime]:
    return (period.starts_at,)


async def statements(
    *, driver: Driver, session: AsyncSession, now: datetime, limit: int, cursor: str | None
) -> Page[StatementSummaryOut]:
    """The driver's own pay periods since they joined, newest first, each with its totals."""
    after = None if cursor is None else paging.decode_cursor(cursor, "statements", (datetime,))[0]
    found = await service.statements(
        session=session,
        driver_id=driver.id,
        member_since=driver.created_at,
        now=now,
        limit=limit + 1,
        after=after,
    )
    page, next_cursor = paging.page_of(
        found, limit, lambda statement: _period_key(statement.period), "statements"
    )
    return [StatementSummaryOut.of(statement) for statement in page], next_cursor


async def statement(
    *, driver: Driver, period_start: date, session: AsyncSession, now: datetime
) -> StatementOut:
    """Every line of one of the driver's own periods, and its totals."""
    found = await service.statement(
        session=session, driver_id=driver.id, period_start=period_start, now=now
    )
    return StatementOut.of(found)


async def receipt(
    *,
    principal: Principal,
    trip_id: uuid.UUID,
    session: AsyncSession,
    profile: Profile,
    registrations: dict[str, str],
) -> ReceiptOut:
    """The trip's itemised receipt, for its rider or its driver (each their own copy), with
    what the jurisdiction's law adds to the fare."""
    return await receipts.receipt(
        session=session,
        trip_id=trip_id,
        principal=principal,
        profile=profile,
        registrations=registrations,
    )


async def pay_report(
    *,
    session: AsyncSession,
    now: datetime,
    start: date | None,
    end: date | None,
    limit: int,
    cursor: str | None,
) -> tuple[PayReportOut, str | None]:
    """The co-op's books on pay, per closed period: no personal data."""
    if start is not None and end is not None and start > end:
        raise UnprocessableEntity(
            "`from` is after `to`",
            errors=[{"field": "query.from", "reason": "Must not be after `to`"}],
        )
    after = None if cursor is None else paging.decode_cursor(cursor, "pay-report", (datetime,))[0]
    reports = await service.report(
        session=session, start=start, end=end, now=now, limit=limit + 1, after=after
    )
    page, next_cursor = paging.page_of(
        reports, limit, lambda report: _period_key(report.period), "pay-report"
    )
    out = PayReportOut(
        minimum_drivers=service.MIN_DRIVERS_REPORTED,
        periods=[PayPeriodReportOut.of(report) for report in page],
    )
    return out, next_cursor
