"""The fairness benchmark's pay side on a hand-made day whose figures are worked out by hand, so
its arithmetic (the floor's top-ups, the Gini of pay per online hour) cannot drift silently."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from bargaining.terms import load_founding_terms
from loadtests.fairness_pay import (
    DriverDays,
    Priced,
    driver_days,
    pay_figures,
    price_requests,
    top_ups,
)
from loadtests.fairness_riders import split
from loadtests.fairness_sim import Trace

D = Decimal

# A: 30.00 for 1 engaged hour over 2 h online; B: 10.00 for half an engaged hour over 2 h;
# C: 50.00 for 1 engaged hour over 2 h; D: nothing for 601 engaged s over a quarter hour (too
# short a shift to have a rate, but the floor still pays it).
DAYS = DriverDays(
    earnings=(D("30.00"), D("10.00"), D("50.00"), D("0.00")),
    engaged_s=(3600, 1800, 3600, 601),
    online_h=(2.0, 2.0, 2.0, 0.25),
    commission=D("7.20"),
)


def test_no_floor_leaves_the_drivers_part() -> None:
    figures = pay_figures(DAYS, D("0"))
    # Rates 5, 15, 25 an online hour: mean |difference| 80/9 over twice the mean 15.
    assert figures.gini == pytest.approx(8 / 27)
    assert figures.p10_per_h == pytest.approx(7.0)  # 5 + 0.2 x (15 - 5)
    assert figures.median_per_h == pytest.approx(15.0)
    assert figures.top_ups == D("0.00")
    assert figures.topped_up_share == 0.0
    assert figures.commission == D("7.20")


def test_the_founding_floor_tops_up_engaged_hours_only() -> None:
    assert top_ups(DAYS, D("24.00")) == [D("0.00"), D("2.00"), D("0.00"), D("4.01")]
    figures = pay_figures(DAYS, D("24.00"))
    # B is paid 12.00 for half an engaged hour: rates 15, 6, 25; D's 601 s are 4.0067 -> 4.01.
    assert figures.top_ups == D("6.01")
    assert figures.gini == pytest.approx(19 / 69)
    assert figures.topped_up_share == pytest.approx(1 / 3)


def test_a_floor_above_the_trips_rate_tops_up_more_drivers() -> None:
    assert top_ups(DAYS, D("40")) == [D("10.00"), D("10.00"), D("0.00"), D("6.68")]
    figures = pay_figures(DAYS, D("40"))
    assert figures.top_ups == D("26.68")
    assert figures.gini == pytest.approx(2 / 11)  # rates 20, 10, 25
    assert figures.median_per_h == pytest.approx(20.0)


def test_the_online_hour_diagnostic_counts_time_online() -> None:
    # 12 an online hour: A's 24.00 and C's 24.00 are covered; B gets 14.00; D 3.00.
    assert top_ups(DAYS, D("12"), per="online") == [D("0.00"), D("14.00"), D("0.00"), D("3.00")]


def test_trips_priced_by_the_agreement_and_added_up_per_driver() -> None:
    terms = load_founding_terms()
    priced = price_requests(
        terms, distance_m=np.array([1000.0, 10_000.0]), duration_s=np.array([600.0, 1800.0])
    )
    # 3.50 + 1.05 + 10 min x 0.35 = 8.05, 8 % = 0.64; 3.50 + 10.50 + 10.50 = 24.50, 8 % = 1.96.
    assert priced.driver_part == (D("7.41"), D("22.54"))
    assert priced.commission == (D("0.64"), D("1.96"))
    days = driver_days(
        Priced(priced.driver_part * 2, priced.commission * 2),
        driver_of=np.array([1, -1, 1, 0]),
        pickup_eta_s=np.array([120.0, np.nan, 300.0, 60.0]),
        trip_s=np.array([600.0, 1800.0, 600.0, 1800.0]),
        online_h=np.array([1.0, 3.0]),
    )
    assert days.earnings == (D("22.54"), D("14.82"))  # an unserved request pays nobody
    assert days.engaged_s == (1860, 1620)  # the pickup, then the ride
    assert days.commission == D("3.24")


def test_which_requests_each_policy_serves() -> None:
    first = Trace(
        driver_of=np.array([0, -1, 1, -1, -1]),
        pickup_m=np.array([500.0, np.nan, 900.0, np.nan, np.nan]),
        most_in_reach=np.array([2, 0, 1, 3, 0]),
    )
    second = Trace(
        driver_of=np.array([0, 1, -1, 2, -1]),
        pickup_m=np.array([400.0, 3000.0, np.nan, 1000.0, np.nan]),
        most_in_reach=np.array([2, 1, 0, 3, 0]),
    )
    s = split(first, second, np.array([600.0, 300.0, 1800.0, 500.0, 900.0]))
    assert (s.both, s.only_first, s.only_second, s.neither) == (1, 1, 2, 1)
    assert s.only_second_none_in_reach == 0.5  # request 1 had no free driver under the first
    assert s.only_first_none_in_reach == 1.0
    assert s.unserved_first_none_in_reach == pytest.approx(2 / 3)
    assert s.only_second_pickup_m_median == 2000.0
    assert s.served_second_pickup_m_median == 1000.0
    assert (s.only_second_trip_s_median, s.only_first_trip_s_median) == (400.0, 1800.0)
    assert (s.served_first_trip_s_mean, s.served_second_trip_s_mean) == (1200.0, 1400 / 3)
