"""Pay on the wire: statements, receipts and the public pay report. Money is a decimal string
with two places (docs/protocol.md); counts are integers; times RFC 3339 UTC."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, Field

from bargaining.fares import Itemised
from bargaining.terms import money_str
from pay.models import PayStatementLine
from pay.service import PeriodReport, Statement


def _money(value: Decimal) -> str:
    return money_str(value.quantize(Decimal("0.01")))


def _item(value: Decimal) -> str:
    """An item of a receipt: to four places at most, two at least."""
    return money_str(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


class StatementLineOut(BaseModel):
    trip_id: uuid.UUID
    kind: str = Field(description="trip (a completed trip) or cancellation_fee")
    adjustment: bool = Field(
        description="true: the trip ended in an earlier period already closed when its record "
        "arrived, so it is paid on this one"
    )
    accepted_at: datetime = Field(description="When the driver accepted the offer")
    ended_at: datetime
    engaged_seconds: int = Field(description="From accepting the offer to the trip's end")
    distance_m: int | None
    duration_s: int | None
    fare_total: str
    commission: str
    driver_earnings: str
    cancellation_fee: str
    agreement_version: int
    currency: str

    @classmethod
    def of(cls, line: PayStatementLine) -> StatementLineOut:
        return cls(
            trip_id=line.trip_id,
            kind=line.kind.value,
            adjustment=line.adjustment,
            accepted_at=line.assigned_at,
            ended_at=line.ended_at,
            engaged_seconds=line.engaged_seconds,
            distance_m=line.distance_m,
            duration_s=line.duration_s,
            fare_total=_money(line.fare_total),
            commission=_money(line.commission),
            driver_earnings=_money(line.driver_earnings),
            cancellation_fee=_money(line.cancellation_fee),
            agreement_version=line.agreement_version,
            currency=line.currency,
        )


class StatementSummaryOut(BaseModel):
    period_start: date = Field(description="Local date the period starts (its id)")
    period_end: date = Field(description="Local date the next period starts")
    starts_at: datetime
    ends_at: datetime
    timezone: str
    status: str = Field(description="open (still filling up) or closed (final, never changes)")
    closed_at: datetime | None
    currency: str
    engaged_floor_per_hour: str
    floor_agreement_version: int = Field(
        description="The version whose floor applies: in force at the period's end (while "
        "open: the one in force now)"
    )
    trips: int
    fares_total: str
    commission_total: str
    earnings_total: str
    cancellation_fees_total: str
    engaged_seconds: int
    floor_due: str
    top_up: str
    pay_total: str

    @classmethod
    def fields_of(cls, statement: Statement) -> dict[str, object]:
        period, totals = statement.period, statement.totals
        return {
            "period_start": period.start_date,
            "period_end": period.ends_at.astimezone(_zone(period.timezone)).date(),
            "starts_at": period.starts_at,
            "ends_at": period.ends_at,
            "timezone": period.timezone,
            "status": statement.status,
            "closed_at": period.closed_at,
            "currency": statement.currency,
            "engaged_floor_per_hour": _money(statement.floor_per_hour),
            "floor_agreement_version": statement.floor_version,
            "trips": totals.trips,
            "fares_total": _money(totals.fares_total),
            "commission_total": _money(totals.commission_total),
            "earnings_total": _money(totals.earnings_total),
            "cancellation_fees_total": _money(totals.cancellation_fees_total),
            "engaged_seconds": totals.engaged_seconds,
            "floor_due": _money(totals.floor_due),
            "top_up": _money(totals.top_up),
            "pay_total": _money(totals.pay_total),
        }

    @classmethod
    def of(cls, statement: Statement) -> StatementSummaryOut:
        return cls.model_validate(cls.fields_of(statement))


class StatementOut(StatementSummaryOut):
    lines: list[StatementLineOut]

    @classmethod
    def of(cls, statement: Statement) -> StatementOut:
        return cls.model_validate(
            {
                **StatementSummaryOut.fields_of(statement),
                "lines": [StatementLineOut.of(line) for line in statement.lines],
            }
        )


def _zone(name: str):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


CSV_COLUMNS = [
    "row",
    "trip_id",
    "accepted_at",
    "ended_at",
    "engaged_seconds",
    "distance_m",
    "duration_s",
    "fare_total",
    "commission",
    "driver_earnings",
    "cancellation_fee",
    "agreement_version",
    "adjustment",
    "floor_due",
    "top_up",
    "pay_total",
]


def statement_csv(out: StatementOut) -> str:
    """The statement as CSV: one row per line, then a `total` row with the same totals."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in out.lines:
        writer.writerow(
            [
                line.kind,
                line.trip_id,
                line.accepted_at.isoformat(),
                line.ended_at.isoformat(),
                line.engaged_seconds,
                "" if line.distance_m is None else line.distance_m,
                "" if line.duration_s is None else line.duration_s,
                line.fare_total,
                line.commission,
                line.driver_earnings,
                line.cancellation_fee,
                line.agreement_version,
                "true" if line.adjustment else "false",
                "",
                "",
                "",
            ]
        )
    writer.writerow(
        [
            "total",
            "",
            "",
            "",
            out.engaged_seconds,
            "",
            "",
            out.fares_total,
            out.commission_total,
            out.earnings_total,
            out.cancellation_fees_total,
            out.floor_agreement_version,
            "",
            out.floor_due,
            out.top_up,
            out.pay_total,
        ]
    )
    return buffer.getvalue()


# --- receipts ----------------------------------------------------------------------------------


class ReceiptItemOut(BaseModel):
    item: str = Field(examples=["base", "distance", "time"])
    quantity: str | None = Field(description="km or minutes; null for a flat amount")
    unit: str | None
    rate: str | None
    amount: str = Field(description="Exact to four places; the total is rounded once")


class DuesOut(BaseModel):
    name: str = Field(description="the dues' legal name, in English", examples=["Per-trip dues"])
    name_fr: str = Field(examples=["Redevance"])
    amount: str = Field(examples=["0.90"])


class TaxOut(BaseModel):
    name: str = Field(examples=["GST"])
    name_fr: str = Field(examples=["TPS"])
    percent: str = Field(examples=["5"])
    amount: str = Field(examples=["0.71"])
    registration: str | None = Field(description="the co-op's registration number for it")


class ReceiptOut(BaseModel):
    """A trip's itemised receipt. The rider's copy has no driver account id, the driver's copy
    no rider id."""

    trip_id: uuid.UUID
    copy_for: str = Field(description="rider or driver")
    kind: str = Field(description="trip (completed) or cancellation_fee")
    requested_at: datetime
    accepted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime
    service_class: str
    currency: str
    agreement_version: int
    agreement_sha256: str
    distance_m: int | None
    duration_s: int | None
    items: list[ReceiptItemOut]
    metered: str | None = Field(description="base + distance + time, before the minimum")
    minimum: str | None
    minimum_applied: bool
    metered_total: str | None = Field(
        default=None,
        description="The meter's fare: the metered amount, or the minimum, to the cent; "
        "`total` unless the fare was capped",
    )
    quote_total: str | None = Field(default=None, description="The quote before the trip")
    max_over_quote_percent: str | None = Field(
        default=None,
        description="The agreement's fares.<class>.max_over_quote_percent: the most a fare may "
        "be above its quote",
    )
    fare_capped: bool = Field(
        default=False,
        description="The meter's fare was more than max_over_quote_percent above the quote: "
        "the rider paid the cap (`total`), not `metered_total`",
    )
    fare_cap_reason: str | None = Field(
        default=None, description="Why the fare was capped, in words (null unless capped)"
    )
    total: str = Field(
        description="The fare the agreement priced (shared between the co-op and the driver); "
        "the rider is billed `amount_billed`, with the law's dues and taxes"
    )
    commission_percent: str | None
    commission_cap: str | None
    cap_applied: bool
    driver_floor: str | None = Field(description="The least the driver earns on this trip")
    floor_applied: bool = Field(description="The commission was cut to keep the driver's floor")
    commission: str = Field(description="The co-op's share")
    driver_earnings: str = Field(description="The driver's share")
    cancellation_fee: str | None
    max_total: str | None = Field(
        default=None,
        description="The most the rider consented to be billed for the trip (its quote's "
        "max_total; null for a trip requested without a quote)",
    )
    dues: DuesOut | None = Field(
        default=None, description="The jurisdiction's per-trip dues (docs/jurisdiction.md)"
    )
    taxes: list[TaxOut] = Field(default_factory=list)
    amount_billed: str | None = Field(
        default=None, description="What the rider was billed: total + dues + taxes"
    )


def receipt_items(itemised: Itemised) -> list[ReceiptItemOut]:
    return [
        ReceiptItemOut(
            item="base", quantity=None, unit=None, rate=None, amount=_item(itemised.base)
        ),
        ReceiptItemOut(
            item="distance",
            quantity=f"{itemised.distance_km:f}",
            unit="km",
            rate=money_str(itemised.per_km),
            amount=_item(itemised.distance_amount),
        ),
        ReceiptItemOut(
            item="time",
            quantity=f"{itemised.minutes:f}",
            unit="min",
            rate=money_str(itemised.per_minute),
            amount=_item(itemised.time_amount),
        ),
    ]


# --- the public pay report ---------------------------------------------------------------------


def _maybe(value: Decimal | None) -> str | None:
    return None if value is None else _money(value)


class PerHourOut(BaseModel):
    median: str | None
    p10: str | None = Field(description="10th percentile, nearest rank")


class PayPeriodReportOut(BaseModel):
    period_start: date
    period_end: date
    starts_at: datetime
    ends_at: datetime
    closed_at: datetime | None
    currency: str
    engaged_floor_per_hour: str
    drivers: int = Field(description="Drivers with a statement in the period")
    suppressed: bool = Field(
        description="true: fewer than 5 drivers worked in the period; its figures are withheld "
        "(null or zero) so nobody can be picked out"
    )
    trips: int | None
    fares_total: str | None
    commission_total: str | None
    take_rate_percent: str | None = Field(description="commission_total / fares_total x 100")
    cancellation_fees_total: str | None
    top_ups_total: str | None
    engaged_hours: str | None
    earnings_per_engaged_hour: PerHourOut | None = Field(
        description="Per driver: (trip earnings + cancellation fees) / engaged hours, before any "
        "top-up"
    )
    pay_per_engaged_hour: PerHourOut | None = Field(
        description="Per driver: pay_total (top-up included) / engaged hours"
    )

    @classmethod
    def of(cls, report: PeriodReport) -> PayPeriodReportOut:
        period = report.period
        base: dict[str, object] = {
            "period_start": period.start_date,
            "period_end": period.ends_at.astimezone(_zone(period.timezone)).date(),
            "starts_at": period.starts_at,
            "ends_at": period.ends_at,
            "closed_at": period.closed_at,
            "currency": period.currency or "",
            "engaged_floor_per_hour": _money(period.floor_per_hour or Decimal(0)),
            "drivers": report.drivers,
            "suppressed": report.suppressed,
        }
        if report.suppressed:
            return cls.model_validate(
                {
                    **base,
                    **dict.fromkeys(
                        (
                            "trips",
                            "fares_total",
                            "commission_total",
                            "take_rate_percent",
                            "cancellation_fees_total",
                            "top_ups_total",
                            "engaged_hours",
                            "earnings_per_engaged_hour",
                            "pay_per_engaged_hour",
                        )
                    ),
                }
            )
        return cls.model_validate(
            {
                **base,
                "trips": report.trips,
                "fares_total": _money(report.fares_total),
                "commission_total": _money(report.commission_total),
                "take_rate_percent": _maybe(report.take_rate_percent),
                "cancellation_fees_total": _money(report.cancellation_fees_total),
                "top_ups_total": _money(report.top_ups_total),
                "engaged_hours": _money(report.engaged_hours),
                "earnings_per_engaged_hour": PerHourOut(
                    median=_maybe(report.earnings_per_hour_median),
                    p10=_maybe(report.earnings_per_hour_p10),
                ),
                "pay_per_engaged_hour": PerHourOut(
                    median=_maybe(report.pay_per_hour_median), p10=_maybe(report.pay_per_hour_p10)
                ),
            }
        )


class PayReportOut(BaseModel):
    minimum_drivers: int = Field(description="Periods with fewer drivers are suppressed")
    periods: list[PayPeriodReportOut]
