"""The replay of days through the matcher's planner under two sets of terms (pure, no I/O)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from bargaining.terms import Terms, load_founding_terms
from dispatch.matching.replay import FIGURES, BudgetExceeded, compare, replay, replay_day
from tests.dispatch.helpers import small_day


def unbounded(terms: Terms) -> Terms:
    dispatch = terms.dispatch.model_copy(
        update={
            "fairness_weight": Decimal("0.4"),
            "earnings_credit_max_s": 5500,
            "earnings_credit_fare_scale_max": Decimal("2"),
            "earnings_penalty_above_median": True,
            "candidates_per_request": 0,
            "fairness_credit_max_s": None,
        }
    )
    return terms.model_copy(update={"dispatch": dispatch})


def with_floor(terms: Terms, floor: str) -> Terms:
    pay = terms.pay.model_copy(update={"engaged_floor_per_hour": Decimal(floor)})
    return terms.model_copy(update={"pay": pay})


def test_the_same_history_and_terms_give_the_same_figures() -> None:
    founding = load_founding_terms()
    days = [small_day(1), small_day(2), small_day(3)]
    calls: list[tuple[int, int]] = []
    first = replay(
        days, founding, unbounded(founding), budget_s=120, progress=lambda *a: calls.append(a)
    )
    again = replay(
        [small_day(1), small_day(2), small_day(3)], founding, unbounded(founding), budget_s=120
    )
    assert first == again
    assert calls == [(i, 6) for i in range(1, 7)]
    assert [c.figure for c in first] == list(FIGURES)
    by = {c.figure: c for c in first}
    # The same terms on both sides: no difference at all, every one within the spread.
    same = replay(days, founding, founding, budget_s=120)
    assert all(c.difference == 0 and c.within_spread for c in same)
    # The unbounded policy lets fairness choose more offers, farther.
    assert by["fairness_share"].proposed > by["fairness_share"].current
    assert by["fairness_extra_max_m"].proposed >= by["fairness_extra_max_m"].current


def test_a_higher_floor_costs_the_coop_top_ups_and_changes_pay_not_earnings() -> None:
    founding = load_founding_terms()
    day = small_day(4)
    low = replay_day(day, with_floor(founding, "0.00"))
    high = replay_day(day, with_floor(founding, "60.00"))
    assert low.floor_top_ups == 0.0
    assert low.pay_gini == low.earnings_gini
    assert high.floor_top_ups > 0
    assert high.earnings_gini == low.earnings_gini  # dispatch did not change
    # A floor per engaged hour tops up the busiest most: it may widen pay per online hour.
    assert high.pay_gini != low.pay_gini
    assert high.pay_median_per_h > low.pay_median_per_h
    assert high.pay_p10_per_h >= low.pay_p10_per_h


def test_a_replay_past_its_budget_stops_and_says_so() -> None:
    founding = load_founding_terms()
    progress: list[tuple[int, int]] = []
    with pytest.raises(BudgetExceeded):
        replay(
            [small_day(5), small_day(6)],
            founding,
            founding,
            budget_s=0.0,
            progress=lambda *a: progress.append(a),
        )
    assert progress == []


def test_the_spread_is_the_days_and_a_difference_beyond_it_is_flagged() -> None:
    founding = load_founding_terms()
    a = [replay_day(small_day(s), founding) for s in (7, 8, 9)]
    [served] = [c for c in compare(a, a) if c.figure == "served_share"]
    values = np.array([f.served_share for f in a])
    assert served.spread == pytest.approx(values.std(ddof=1), abs=1e-4)
    shifted = [f.__class__(**{**f.__dict__, "served_share": f.served_share + 1}) for f in a]
    [moved] = [c for c in compare(a, shifted) if c.figure == "served_share"]
    assert moved.difference == pytest.approx(1.0) and not moved.within_spread
