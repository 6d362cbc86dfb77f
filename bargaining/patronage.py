"""The patronage dividend's arithmetic: the reserve, then shares by the largest-remainder method.

Pure: no I/O. A surplus is split in two: the co-op's indivisible reserve (`reserve_percent` of it,
rounded half-up to the cent) and the distributable rest, which is shared among the members in
proportion to their patronage measure, to the cent, summing exactly to the distributable amount:

1. each member's exact quota is distributable x measure / total measure (in Decimal);
2. each gets their quota rounded down to the cent;
3. the cents left over (fewer than the number of members) go one each to the largest remainders.

Ties for a last cent are broken by the larger measure, then by the member number in text order
(`TIE_RULE`). A member with no patronage gets nothing and is not listed. With equal measures the
shares differ by at most one cent; a larger measure never gets a smaller share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext

CENT = Decimal("0.01")
_PRECISION = 60

TIE_RULE = (
    "Leftover cents go to the largest remainders; equal remainders are settled by the larger "
    "patronage measure, then by the member number in text order."
)


@dataclass(frozen=True)
class Share:
    member: str  # the tie-breaking key: the member number
    measure: Decimal
    share: Decimal


@dataclass(frozen=True)
class Allocation:
    surplus: Decimal
    reserve: Decimal
    distributable: Decimal
    total_measure: Decimal
    shares: tuple[Share, ...]  # largest measure first


def reserve_of(surplus: Decimal, reserve_percent: Decimal) -> Decimal:
    with localcontext() as context:
        context.prec = _PRECISION
        return (surplus * reserve_percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def apportion(amount: Decimal, measures: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """`amount` (whole cents, >= 0) shared by the largest-remainder method over positive measures.

    Members whose measure is zero get nothing; negative measures are refused. With no positive
    measure at all nothing can be shared, and the answer is empty."""
    if amount < 0 or amount != amount.quantize(CENT):
        raise ValueError("the amount must be whole cents, not negative")
    if any(value < 0 for value in measures.values()):
        raise ValueError("a patronage measure cannot be negative")
    positive = {member: value for member, value in measures.items() if value > 0}
    if not positive:
        return {}
    total = sum(positive.values(), Decimal(0))
    cents = int(amount / CENT)
    floors: dict[str, int] = {}
    remainders: dict[str, Decimal] = {}
    with localcontext() as context:
        context.prec = _PRECISION
        for member, value in positive.items():
            # Exact in rationals: cents x value / total = whole + remainder / total.
            numerator = Decimal(cents) * value
            whole = (numerator / total).to_integral_value(rounding=ROUND_DOWN)
            if whole * total > numerator:  # the division rounded up onto an integer
                whole -= 1
            floors[member] = int(whole)
            remainders[member] = numerator - whole * total  # compared over the same total
    left = cents - sum(floors.values())
    order = sorted(positive, key=lambda m: (-remainders[m], -positive[m], m))
    for member in order[:left]:
        floors[member] += 1
    return {member: Decimal(floors[member]) * CENT for member in positive}


def allocate(
    *, surplus: Decimal, reserve_percent: Decimal, measures: Mapping[str, Decimal]
) -> Allocation:
    """The reserve, and the rest shared among members with a positive measure."""
    if surplus < 0 or surplus != surplus.quantize(CENT):
        raise ValueError("the surplus must be whole cents, not negative")
    reserve = reserve_of(surplus, reserve_percent)
    distributable = surplus - reserve
    shares = apportion(distributable, measures)
    if not shares:
        # Nobody has patronage in the period: nothing can be shared, all of it is kept.
        reserve, distributable = surplus, Decimal("0.00")
    ordered = sorted(shares, key=lambda m: (-measures[m], m))
    return Allocation(
        surplus=surplus,
        reserve=reserve,
        distributable=distributable,
        total_measure=sum((measures[m] for m in shares), Decimal(0)),
        shares=tuple(Share(member=m, measure=measures[m], share=shares[m]) for m in ordered),
    )
