"""HTTP routes of pay: statements (the driver's own), receipts (the trip's rider and driver) and
the public pay report (anyone). Adapters over `pay.application`, which the pages call too."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from coop import paging
from coop.auth import Admin, CurrentPrincipal
from coop.clock import Now
from coop.dependencies import JurisdictionDep, SessionDep
from coop.state import CoreState, state_of
from drivers.dependencies import CurrentDriver
from pay import application, review
from pay.schemas import (
    PayReportOut,
    ReceiptOut,
    StatementOut,
    StatementSummaryOut,
    statement_csv,
)

router = APIRouter(prefix="/v1", tags=["pay"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid token"},
    403: {"description": "Not a driver, or not this caller's trip"},
}


# Statements keep the bounds they had before they were paged (a year of weekly periods by
# default, ten at most): lowering them would break a client that asks for 520.
STATEMENTS_DEFAULT_LIMIT = 52
STATEMENTS_MAX_LIMIT = 520
# The review list looks back a month by default; a quarter at most keeps it one answer.
REVIEW_DEFAULT_DAYS = 30
REVIEW_MAX_DAYS = 92


@router.get(
    "/drivers/me/statements",
    response_model=list[StatementSummaryOut],
    responses={**_PROBLEMS, 422: {"description": "A bad limit or cursor"}},
)
async def list_statements(
    request: Request,
    response: Response,
    driver: CurrentDriver,
    session: SessionDep,
    now: Now,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=STATEMENTS_MAX_LIMIT,
            description=f"Periods per page, 1-{STATEMENTS_MAX_LIMIT} "
            f"(default {STATEMENTS_DEFAULT_LIMIT})",
        ),
    ] = STATEMENTS_DEFAULT_LIMIT,
    cursor: paging.CursorQuery = None,
) -> list[StatementSummaryOut]:
    """The caller's pay periods since they joined, newest first: the open one (still filling
    up) and the closed ones (final), each with its totals. Paged (docs/protocol.md, "Paging")."""
    page, next_cursor = await application.statements(
        driver=driver, session=session, now=now, limit=limit, cursor=cursor
    )
    paging.set_next(request, response, next_cursor)
    return page


@router.get(
    "/drivers/me/statements/{period_start}",
    response_model=StatementOut,
    responses={
        **_PROBLEMS,
        200: {"content": {"text/csv": {}}, "description": "The statement (JSON, or CSV)"},
        404: {"description": "No such period (pay_period_not_found)"},
        422: {"description": "Not a date, or not the first day of a period"},
    },
)
async def read_statement(
    period_start: date,
    driver: CurrentDriver,
    session: SessionDep,
    now: Now,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """Every line of one period and its totals; `?format=csv` for the same as CSV."""
    out = await application.statement(
        driver=driver, period_start=period_start, session=session, now=now
    )
    if format == "csv":
        return Response(
            content=statement_csv(out),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": (
                    f'attachment; filename="statement-{period_start.isoformat()}.csv"'
                )
            },
        )
    return out


@router.get(
    "/trips/{trip_id}/receipt",
    response_model=ReceiptOut,
    responses={
        **_PROBLEMS,
        404: {"description": "No such trip"},
        409: {"description": "The trip has no receipt (not completed, no fee charged)"},
    },
)
async def read_receipt(
    trip_id: uuid.UUID,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    profile: JurisdictionDep,
) -> ReceiptOut:
    """The trip's itemised receipt, for its rider or its driver, with the consented maximum
    and the jurisdiction's dues and taxes."""
    return await application.receipt(
        principal=principal,
        trip_id=trip_id,
        session=session,
        profile=profile,
        registrations=state_of(request.app, CoreState).settings.tax_registrations,
    )


@router.get(
    "/transparency/pay",
    response_model=PayReportOut,
    responses={422: {"description": "`from` after `to`, a bad date, limit or cursor"}},
)
async def pay_report(
    request: Request,
    response: Response,
    session: SessionDep,
    now: Now,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query()] = None,
    limit: paging.LimitQuery = paging.DEFAULT_LIMIT,
    cursor: paging.CursorQuery = None,
) -> PayReportOut:
    """The co-op's books on pay, per closed period: trips, fares, commission and the take rate,
    cancellation fees, top-ups, and drivers' earnings per engaged hour (median and 10th
    percentile). No personal data; periods with fewer than 5 drivers are suppressed. The
    periods are paged (docs/protocol.md, "Paging")."""
    out, next_cursor = await application.pay_report(
        session=session, now=now, start=from_, end=to, limit=limit, cursor=cursor
    )
    paging.set_next(request, response, next_cursor)
    return out


@router.get(
    "/pay/review",
    response_model=review.ReviewList,
    responses={
        401: {"description": "Missing or invalid token"},
        403: {"description": "Not an admin token"},
        422: {"description": "A bad number of days"},
    },
)
async def read_review_list(
    _: Admin,
    session: SessionDep,
    now: Now,
    days: Annotated[
        int, Query(ge=1, le=REVIEW_MAX_DAYS, description=f"The window, 1-{REVIEW_MAX_DAYS} days")
    ] = REVIEW_DEFAULT_DAYS,
) -> review.ReviewList:
    """The operators' review list of the hourly floor over the last `days` (admin only): pairs
    of a driver and a rider who keep meeting, new riders picked up where their driver already
    was, top-ups far above the period's median, rides ended for running too long. A list for a
    person to look at: nothing here acts on anyone (docs/pay.md)."""
    return await review.review_list(session=session, now=now, days=days)
