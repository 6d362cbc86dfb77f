"""The earnings credit's fare scaling and its penalty above the median rate (pure costs)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.matching import costs

WEIGHT = Decimal("0.2")


def test_a_driver_above_the_median_gets_the_mirror_penalty_only_when_signed() -> None:
    earned, online = np.array([0.0, 120.0, 400.0]), np.array([3 * 3600.0] * 3)
    plain = costs.earnings_shortfall_array(earned, online, 40.0)
    signed = costs.earnings_shortfall_array(earned, online, 40.0, signed=True)
    # 0.00, 40.00 (the median) and 100.00 an hour over 3 h, shrunk by an hour at the median.
    assert plain.tolist() == pytest.approx([0.75, 0.0, 0.0])
    assert signed.tolist() == pytest.approx([0.75, 0.0, -1.0])  # 110 an hour shrunk: capped
    assert costs.earnings_shortfall_array(
        np.array([200.0]), np.array([3 * 3600.0]), 40.0, signed=True
    ).tolist() == pytest.approx([-0.5])
    credit = costs.driver_credit_array(
        idle_s=np.zeros(3),
        fairness_weight=WEIGHT,
        earnings_shortfall=signed,
        earnings_credit_max_s=1000,
        earnings_signed=True,
    )
    assert credit.tolist() == pytest.approx([750.0, 0.0, -1000.0])
    with pytest.raises(ValueError, match="between 0 and 1"):
        costs.driver_credit_array(
            idle_s=np.zeros(3),
            fairness_weight=WEIGHT,
            earnings_shortfall=signed,
            earnings_credit_max_s=1000,
        )


def test_a_bound_spans_the_signed_credit_from_minus_half_to_plus_half() -> None:
    shortfall = np.array([1.0, 0.1, -1.0])
    credit = costs.driver_credit_array(
        idle_s=np.zeros(3),
        fairness_weight=WEIGHT,
        fairness_credit_max_s=400,
        earnings_shortfall=shortfall,
        earnings_credit_max_s=1000,
        earnings_signed=True,
    )
    assert credit.tolist() == pytest.approx([200.0, 100.0, -200.0])


def test_the_fare_scales_the_earnings_credit_up_to_its_maximum() -> None:
    ratio = costs.fare_ratio_array(np.array([10.0, 40.0, 100.0, np.nan]), 20.0)
    assert ratio.tolist() == pytest.approx([0.5, 2.0, 5.0, 1.0])
    assert costs.fare_ratio_array(np.array([10.0]), None).tolist() == [1.0]
    credit = costs.driver_credit_array(
        idle_s=np.full(4, 600.0),
        fairness_weight=WEIGHT,
        earnings_shortfall=np.full(4, 0.5),
        earnings_credit_max_s=1000,
        fare_ratio=ratio,
        fare_scale_max=Decimal("2"),
    )
    # 120 s of idle credit each, plus 500 s x the fare ratio counted up to 2.
    assert credit.tolist() == pytest.approx([370.0, 1120.0, 1120.0, 620.0])
    with pytest.raises(ValueError, match="fare ratios"):
        costs.driver_credit_array(
            idle_s=np.zeros(1),
            fairness_weight=WEIGHT,
            earnings_shortfall=np.full(1, 0.5),
            earnings_credit_max_s=1000,
            fare_ratio=np.array([-1.0]),
            fare_scale_max=Decimal("2"),
        )


@given(
    eta=st.integers(0, 2_000),
    idle=st.floats(-100, 5_000),
    shortfall=st.floats(-1, 1),
    ratio=st.floats(0, 5),
    bound=st.one_of(st.none(), st.integers(0, 3_600)),
    scale=st.sampled_from([None, Decimal("1"), Decimal("2.5")]),
)
def test_the_scalar_and_array_forms_agree_under_every_policy(
    eta: int,
    idle: float,
    shortfall: float,
    ratio: float,
    bound: int | None,
    scale: Decimal | None,
) -> None:
    scalar = costs.edge_cost(
        pickup_eta_s=eta,
        idle_s=idle,
        fairness_weight=WEIGHT,
        fairness_credit_max_s=bound,
        earnings_shortfall=shortfall,
        earnings_credit_max_s=1800,
        earnings_signed=True,
        fare_ratio=ratio,
        fare_scale_max=scale,
    )
    array = costs.edge_cost_array(
        pickup_eta_s=np.array([eta]),
        idle_s=np.array([idle]),
        fairness_weight=WEIGHT,
        fairness_credit_max_s=bound,
        earnings_shortfall=np.array([shortfall]),
        earnings_credit_max_s=1800,
        earnings_signed=True,
        fare_ratio=np.array([ratio]),
        fare_scale_max=scale,
    )
    assert scalar == int(array[0])
    if bound is not None:
        assert eta - bound / 2 - 1 <= scalar <= eta + bound / 2 + 1
