"""The arithmetic of a statement and of the public pay report: pure, in `Decimal`.

Every line's amounts are whole cents already (a fare is rounded when it is priced). The one
inexact step is the floor: engaged seconds x the hourly floor / 3600, carried at 50 significant
digits and rounded half-up to the cent once, at the end. Every total is then an exact sum of
lines, and `pay_total` an exact sum of totals, so the figures a member adds up agree to the cent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from coop.money import round_cents

ZERO = Decimal("0.00")
_PRECISION = 50


@dataclass(frozen=True)
class LineAmounts:
    """What one statement line adds up: a completed trip or a cancellation fee received."""

    is_trip: bool  # a completed trip; otherwise a cancellation fee
    fare_total: Decimal
    commission: Decimal
    driver_earnings: Decimal
    cancellation_fee: Decimal
    engaged_seconds: int


@dataclass(frozen=True)
class Totals:
    trips: int
    fares_total: Decimal
    commission_total: Decimal
    earnings_total: Decimal
    cancellation_fees_total: Decimal
    engaged_seconds: int
    floor_due: Decimal
    top_up: Decimal
    pay_total: Decimal


def floor_due(engaged_seconds: int, floor_per_hour: Decimal) -> Decimal:
    """Engaged hours x the hourly floor, rounded half-up to the cent once."""
    if engaged_seconds < 0:
        raise ValueError("engaged_seconds cannot be negative")
    with localcontext() as context:
        context.prec = _PRECISION
        return round_cents(Decimal(engaged_seconds) * floor_per_hour / 3600)


def top_up(*, floor: Decimal, earnings: Decimal, cancellation_fees: Decimal) -> Decimal:
    """What brings the period to the floor: max(0, floor - earnings - fees)."""
    return max(ZERO, floor - earnings - cancellation_fees)


def totals(lines: Iterable[LineAmounts], *, floor_per_hour: Decimal) -> Totals:
    """A statement's totals from its lines and the hourly floor in force at the period's end."""
    items = list(lines)
    fares = sum((line.fare_total for line in items), ZERO)
    commission = sum((line.commission for line in items), ZERO)
    earnings = sum((line.driver_earnings for line in items), ZERO)
    fees = sum((line.cancellation_fee for line in items), ZERO)
    engaged = sum(line.engaged_seconds for line in items)
    due = floor_due(engaged, floor_per_hour)
    extra = top_up(floor=due, earnings=earnings, cancellation_fees=fees)
    return Totals(
        trips=sum(1 for line in items if line.is_trip),
        fares_total=fares,
        commission_total=commission,
        earnings_total=earnings,
        cancellation_fees_total=fees,
        engaged_seconds=engaged,
        floor_due=due,
        top_up=extra,
        pay_total=earnings + fees + extra,
    )


def per_hour(amount: Decimal, engaged_seconds: int) -> Decimal | None:
    """An amount per engaged hour, to the cent; None without engaged time."""
    if engaged_seconds <= 0:
        return None
    with localcontext() as context:
        context.prec = _PRECISION
        return round_cents(amount * 3600 / Decimal(engaged_seconds))


def percent(part: Decimal, whole: Decimal) -> Decimal | None:
    """part / whole as a percent with two places; None when whole is zero."""
    if whole == 0:
        return None
    with localcontext() as context:
        context.prec = _PRECISION
        return round_cents(part * 100 / whole)


def nearest_rank(values: Sequence[Decimal], fraction: Decimal) -> Decimal:
    """The nearest-rank percentile: the ceil(fraction x n)-th smallest value (at least the 1st).
    Always one of the values, so no figure is invented between two drivers."""
    if not values:
        raise ValueError("no values")
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be in (0, 1]")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[Decimal]) -> Decimal:
    """The middle value, or the mean of the two middle ones rounded half-up to the cent."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return round_cents((ordered[middle - 1] + ordered[middle]) / 2)
