"""The arithmetic of pay as pure functions, with hypothesis: statements, the floor and its
top-up, the largest-remainder apportionment of a dividend, receipts' items and the calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bargaining import fares, patronage
from bargaining.terms import Terms
from pay import arithmetic
from pay.periods import Grid
from tests.bargaining.strategies import valid_terms

CENTS = st.integers(min_value=0, max_value=50_000_00).map(lambda c: Decimal(c) / 100)
RATE = st.integers(min_value=0, max_value=200_00).map(lambda c: Decimal(c) / 100)


@st.composite
def lines(draw: st.DrawFn) -> arithmetic.LineAmounts:
    if draw(st.booleans()):
        fare = draw(CENTS)
        commission = min(fare, draw(CENTS))
        return arithmetic.LineAmounts(
            is_trip=True,
            fare_total=fare,
            commission=commission,
            driver_earnings=fare - commission,
            cancellation_fee=arithmetic.ZERO,
            engaged_seconds=draw(st.integers(0, 6 * 3600)),
        )
    return arithmetic.LineAmounts(
        is_trip=False,
        fare_total=arithmetic.ZERO,
        commission=arithmetic.ZERO,
        driver_earnings=arithmetic.ZERO,
        cancellation_fee=draw(CENTS),
        engaged_seconds=draw(st.integers(0, 3600)),
    )


@given(st.lists(lines(), max_size=60), RATE)
def test_statement_totals_are_the_sums_of_the_lines(
    items: list[arithmetic.LineAmounts], floor: Decimal
) -> None:
    totals = arithmetic.totals(items, floor_per_hour=floor)
    assert totals.trips == sum(1 for line in items if line.is_trip)
    assert totals.fares_total == sum((line.fare_total for line in items), Decimal(0))
    assert totals.commission_total == sum((line.commission for line in items), Decimal(0))
    assert totals.earnings_total == sum((line.driver_earnings for line in items), Decimal(0))
    assert totals.cancellation_fees_total == sum(
        (line.cancellation_fee for line in items), Decimal(0)
    )
    assert totals.engaged_seconds == sum(line.engaged_seconds for line in items)
    assert totals.fares_total == totals.commission_total + totals.earnings_total
    assert totals.pay_total == (
        totals.earnings_total + totals.cancellation_fees_total + totals.top_up
    )
    for amount in (totals.floor_due, totals.top_up, totals.pay_total):
        assert amount == amount.quantize(Decimal("0.01"))


@given(st.lists(lines(), max_size=60), RATE)
def test_the_top_up_brings_every_period_to_the_floor_and_never_below_zero(
    items: list[arithmetic.LineAmounts], floor: Decimal
) -> None:
    totals = arithmetic.totals(items, floor_per_hour=floor)
    assert totals.top_up >= 0
    assert totals.pay_total >= totals.floor_due
    earned = totals.earnings_total + totals.cancellation_fees_total
    # Never more than needed: no top-up when earnings reach the floor, else exactly the gap.
    assert totals.top_up == (totals.floor_due - earned if earned < totals.floor_due else 0)


def test_the_floor_rounds_half_up_once() -> None:
    # 1 h 0 min 45 s at 24.00/h = 24.30 exactly; 1 s at 24.00/h = 0.00666... -> 0.01
    assert arithmetic.floor_due(3645, Decimal("24.00")) == Decimal("24.30")
    assert arithmetic.floor_due(1, Decimal("24.00")) == Decimal("0.01")
    # 0.125 rounds up, not to even.
    assert arithmetic.floor_due(45, Decimal("10.00")) == Decimal("0.13")
    with pytest.raises(ValueError):
        arithmetic.floor_due(-1, Decimal("24.00"))


def test_percentiles_pick_real_values() -> None:
    values = [Decimal(v) for v in ("30", "10", "20", "40", "50")]
    assert arithmetic.median(values) == Decimal("30")
    assert arithmetic.median(values[:4]) == Decimal("25.00")
    assert arithmetic.nearest_rank(values, Decimal("0.1")) == Decimal("10")
    assert arithmetic.nearest_rank(values * 4, Decimal("0.1")) == Decimal("10")
    assert arithmetic.nearest_rank(values, Decimal("1")) == Decimal("50")


# --- apportionment -----------------------------------------------------------------------------

MEASURES = st.dictionaries(
    st.text(alphabet="0123456789", min_size=1, max_size=6).map(lambda s: f"M-{s}"),
    st.integers(min_value=0, max_value=10**7).map(Decimal),
    max_size=40,
)


@given(CENTS, MEASURES)
def test_apportionment_sums_exactly_to_the_amount(
    amount: Decimal, measures: dict[str, Decimal]
) -> None:
    shares = patronage.apportion(amount, measures)
    positive = {m for m, v in measures.items() if v > 0}
    assert set(shares) == positive  # nobody without patronage gets anything
    if positive:
        assert sum(shares.values(), Decimal(0)) == amount
    for member, share in shares.items():
        assert share >= 0 and share == share.quantize(Decimal("0.01"))
        # Within a cent of the exact proportional share.
        exact = amount * measures[member] / sum(measures[m] for m in positive)
        assert abs(share - exact) < Decimal("0.01")


@given(CENTS, MEASURES)
def test_apportionment_is_monotone_in_the_measure(
    amount: Decimal, measures: dict[str, Decimal]
) -> None:
    shares = patronage.apportion(amount, measures)
    for a in shares:
        for b in shares:
            if measures[a] > measures[b]:
                assert shares[a] >= shares[b]
            if measures[a] == measures[b]:
                assert abs(shares[a] - shares[b]) <= Decimal("0.01")


def test_the_tie_rule_gives_the_last_cent_by_measure_then_member_number() -> None:
    # 0.10 over three equal measures: 0.03 each and one cent left, to the first member number.
    assert patronage.apportion(
        Decimal("0.10"), {"M-2": Decimal(1), "M-1": Decimal(1), "M-3": Decimal(1)}
    ) == {
        "M-1": Decimal("0.04"),
        "M-2": Decimal("0.03"),
        "M-3": Decimal("0.03"),
    }
    with pytest.raises(ValueError):
        patronage.apportion(Decimal("-0.01"), {"M-1": Decimal(1)})
    with pytest.raises(ValueError):
        patronage.apportion(Decimal("0.001"), {"M-1": Decimal(1)})


@given(CENTS.filter(lambda c: c > 0), st.integers(0, 100).map(Decimal), MEASURES)
def test_the_reserve_and_the_shares_add_up_to_the_surplus(
    surplus: Decimal, reserve_percent: Decimal, measures: dict[str, Decimal]
) -> None:
    allocation = patronage.allocate(
        surplus=surplus, reserve_percent=reserve_percent, measures=measures
    )
    shared = sum((s.share for s in allocation.shares), Decimal(0))
    assert allocation.reserve + allocation.distributable == surplus
    assert shared == allocation.distributable
    if not any(v > 0 for v in measures.values()):
        assert allocation.reserve == surplus and allocation.shares == ()


def test_the_worked_example_of_docs_pay_md() -> None:
    hours = {"M-103": 12, "M-101": 40, "M-105": 5, "M-102": 25, "M-104": 8}
    allocation = patronage.allocate(
        surplus=Decimal("1000.00"),
        reserve_percent=Decimal("30"),
        measures={member: Decimal(h * 3600) for member, h in hours.items()},
    )
    assert (allocation.reserve, allocation.distributable) == (Decimal("300.00"), Decimal("700.00"))
    # 311.111..., 194.444..., 93.333..., 62.222..., 38.888...: 699.98 rounded down; the two
    # cents left to the largest remainders (0.89 and 0.44 of a cent).
    assert [(s.member, s.share) for s in allocation.shares] == [
        ("M-101", Decimal("311.11")),
        ("M-102", Decimal("194.45")),
        ("M-103", Decimal("93.33")),
        ("M-104", Decimal("62.22")),
        ("M-105", Decimal("38.89")),
    ]


# --- receipts ----------------------------------------------------------------------------------


@given(valid_terms(), st.integers(0, 200_000), st.integers(0, 4 * 3600))
def test_a_receipts_items_give_the_charged_fare_and_split(
    terms: Terms, distance_m: int, duration_s: int
) -> None:
    fare = fares.price_trip(
        terms,
        agreement_version=1,
        service_class="standard",
        distance_m=distance_m,
        duration_s=duration_s,
    )
    items = fares.itemise(
        terms, service_class="standard", distance_m=distance_m, duration_s=duration_s
    )
    assert items.total == fare.total
    assert items.commission == fare.coop_commission
    assert items.driver_earnings == fare.driver_earnings
    with localcontext() as context:
        context.prec = 50  # the items are carried at 50 digits
        assert items.metered == items.base + items.distance_amount + items.time_amount
    assert items.minimum_applied == (items.total == items.minimum and items.metered < items.minimum)
    if items.cap_applied:
        assert items.commission_cap is not None and items.commission <= items.commission_cap


# --- the calendar ------------------------------------------------------------------------------


@given(
    st.sampled_from([7, 14]),
    st.sampled_from(["America/Toronto", "Europe/Paris", "Pacific/Auckland", "UTC"]),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
)
def test_every_instant_is_in_one_period_starting_on_a_monday(
    days: int, zone: str, naive: datetime
) -> None:
    grid = Grid(period_days=days, timezone=zone)
    at = naive.replace(tzinfo=UTC)
    start, starts_at, ends_at = grid.period_of(at)
    assert start.weekday() == 0 and grid.is_start(start)
    assert starts_at <= at < ends_at
    assert starts_at.astimezone(grid.zone).time().hour == 0
    # Within an hour of the nominal length (daylight saving moves a period by one hour).
    assert abs((ends_at - starts_at) - timedelta(days=days)) <= timedelta(hours=1)
    # The next period starts where this one ends.
    assert grid.period_of(ends_at)[1] == ends_at


def test_fourteen_day_periods_are_anchored_on_2024_01_01() -> None:
    grid = Grid(period_days=14, timezone="America/Toronto")
    assert grid.is_start(date(2024, 1, 1)) and grid.is_start(date(2026, 11, 30))
    assert not grid.is_start(date(2026, 11, 23))
    assert not grid.is_start(date(2026, 11, 24))
    with pytest.raises(ValueError):
        Grid(period_days=10, timezone="UTC")
