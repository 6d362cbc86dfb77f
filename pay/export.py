"""A driver's pay records in their personal-data export (GET /v1/drivers/me/export)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.terms import money_str
from pay.models import PayStatement, PayStatementLine


async def pay_statements(*, session: AsyncSession, driver_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every closed statement of the driver with its lines, oldest first."""
    lines: dict[Any, list[dict[str, Any]]] = {}
    for line in await session.scalars(
        select(PayStatementLine)
        .where(PayStatementLine.driver_id == driver_id)
        .order_by(PayStatementLine.ended_at, PayStatementLine.trip_id)
    ):
        lines.setdefault(line.period_start, []).append(
            {
                "trip_id": line.trip_id,
                "kind": line.kind.value,
                "adjustment": line.adjustment,
                "accepted_at": line.assigned_at,
                "ended_at": line.ended_at,
                "engaged_seconds": line.engaged_seconds,
                "distance_m": line.distance_m,
                "duration_s": line.duration_s,
                "fare_total": money_str(line.fare_total),
                "commission": money_str(line.commission),
                "driver_earnings": money_str(line.driver_earnings),
                "cancellation_fee": money_str(line.cancellation_fee),
                "agreement_version": line.agreement_version,
            }
        )
    statements = await session.scalars(
        select(PayStatement)
        .where(PayStatement.driver_id == driver_id)
        .order_by(PayStatement.period_start)
    )
    return [
        {
            "period_start": row.period_start.isoformat(),
            "trips": row.trips,
            "fares_total": money_str(row.fares_total),
            "commission_total": money_str(row.commission_total),
            "earnings_total": money_str(row.earnings_total),
            "cancellation_fees_total": money_str(row.cancellation_fees_total),
            "engaged_seconds": row.engaged_seconds,
            "floor_due": money_str(row.floor_due),
            "top_up": money_str(row.top_up),
            "pay_total": money_str(row.pay_total),
            "lines": lines.get(row.period_start, []),
        }
        for row in statements
    ]
