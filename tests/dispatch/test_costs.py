"""Edge costs: the pickup ETA, the fairness credit and its cap, and the offer's explanation."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.matching.costs import (
    DETOUR_FACTOR,
    EARNINGS_PRIOR_H,
    IDLE_CREDIT_CAP_S,
    PICKUP_SPEED_MPS,
    REFERENCE_MIN_ONLINE_S,
    earnings_shortfall_array,
    edge_cost,
    edge_cost_array,
    explain,
    explain_fairness,
    explain_shift,
    pickup_eta_s,
    pickup_eta_s_array,
    reference_rate_per_h,
)

distances = st.floats(min_value=0, max_value=50_000, allow_nan=False)
idle_times = st.floats(min_value=-60, max_value=4 * 3600, allow_nan=False)
etas = st.integers(min_value=0, max_value=5_000)
weights = st.decimals(min_value=0, max_value=2, places=2)


def test_the_constants_are_a_city_street_grid() -> None:
    # The travel-time model's prior: the quote's 25 km/h (docs/eta.md).
    assert PICKUP_SPEED_MPS == pytest.approx(25 / 3.6)
    assert DETOUR_FACTOR == 1.3
    assert IDLE_CREDIT_CAP_S == 3600


@pytest.mark.parametrize(
    ("distance_m", "eta_s"),
    [(0, 0), (830, 155), (1000, 187), (6000, 1123)],
)
def test_pickup_eta_drives_the_detoured_distance_at_city_speed(
    distance_m: float, eta_s: int
) -> None:
    assert pickup_eta_s(distance_m) == eta_s


@given(distances, distances)
def test_pickup_eta_is_monotone_in_distance(a: float, b: float) -> None:
    near, far = sorted((a, b))
    assert pickup_eta_s(near) <= pickup_eta_s(far)


@pytest.mark.parametrize("distance_m", [-1.0, float("nan"), float("inf")])
def test_a_bad_distance_is_refused(distance_m: float) -> None:
    with pytest.raises(ValueError, match="pickup distance"):
        pickup_eta_s(distance_m)
    with pytest.raises(ValueError, match="pickup distances"):
        pickup_eta_s_array(np.array([100.0, distance_m]))


def test_without_fairness_the_cost_is_the_pickup_time() -> None:
    assert edge_cost(pickup_eta_s=300, idle_s=3000, fairness_weight=Decimal("0")) == 300


def test_the_fairness_credit_is_the_weighted_idle_time() -> None:
    # Ten minutes of waiting at 0.2 weigh two minutes of driving.
    assert edge_cost(pickup_eta_s=300, idle_s=600, fairness_weight=Decimal("0.2")) == 180
    # A long wait can make the cost negative; the solver takes negative costs.
    assert edge_cost(pickup_eta_s=100, idle_s=1800, fairness_weight=Decimal("0.2")) == -260


@given(etas, idle_times, idle_times, weights)
def test_more_idle_time_never_costs_more(
    eta_s: int, a: float, b: float, fairness_weight: Decimal
) -> None:
    shorter, longer = sorted((a, b))
    assert edge_cost(
        pickup_eta_s=eta_s, idle_s=longer, fairness_weight=fairness_weight
    ) <= edge_cost(pickup_eta_s=eta_s, idle_s=shorter, fairness_weight=fairness_weight)


def test_more_idle_time_costs_less_below_the_cap() -> None:
    weight = Decimal("0.2")
    costs = [edge_cost(pickup_eta_s=400, idle_s=idle, fairness_weight=weight) for idle in (0, 60)]
    assert costs == [400, 388]


def test_the_idle_credit_stops_at_the_cap() -> None:
    weight = Decimal("0.2")
    at_cap = edge_cost(pickup_eta_s=400, idle_s=IDLE_CREDIT_CAP_S, fairness_weight=weight)
    assert at_cap == 400 - 720
    for idle_s in (IDLE_CREDIT_CAP_S + 1, 5 * 3600, 48 * 3600):
        assert edge_cost(pickup_eta_s=400, idle_s=idle_s, fairness_weight=weight) == at_cap


def test_a_driver_nearer_by_more_than_the_capped_credit_always_wins() -> None:
    weight = Decimal("0.2")
    near = edge_cost(pickup_eta_s=60, idle_s=0, fairness_weight=weight)
    far = edge_cost(pickup_eta_s=60 + 721, idle_s=10 * 3600, fairness_weight=weight)
    assert near < far


def test_a_negative_idle_time_earns_no_credit() -> None:
    weight = Decimal("0.2")
    assert edge_cost(pickup_eta_s=300, idle_s=-5, fairness_weight=weight) == 300


@pytest.mark.parametrize(
    ("eta_s", "idle_s", "weight", "message"),
    [
        (300, 10, Decimal("-0.1"), "fairness weight"),
        (300, 10, Decimal("NaN"), "fairness weight"),
        (300, 10, Decimal("Infinity"), "fairness weight"),
        (300, float("nan"), Decimal("0.2"), "idle time"),
        (300, float("inf"), Decimal("0.2"), "idle time"),
        (-1, 10, Decimal("0.2"), "pickup ETA"),
    ],
)
def test_bad_cost_inputs_are_refused(
    eta_s: int, idle_s: float, weight: Decimal, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        edge_cost(pickup_eta_s=eta_s, idle_s=idle_s, fairness_weight=weight)
    with pytest.raises(ValueError, match=message):
        edge_cost_array(
            pickup_eta_s=np.array([eta_s]), idle_s=np.array([idle_s]), fairness_weight=weight
        )


@given(st.lists(st.tuples(distances, idle_times), max_size=30), weights)
def test_the_array_forms_give_the_same_integers(
    pairs: list[tuple[float, float]], fairness_weight: Decimal
) -> None:
    distance_m = np.array([d for d, _ in pairs], dtype=np.float64)
    idle_s = np.array([i for _, i in pairs], dtype=np.float64)
    eta_s = pickup_eta_s_array(distance_m)
    assert eta_s.tolist() == [pickup_eta_s(d) for d, _ in pairs]
    costs = edge_cost_array(pickup_eta_s=eta_s, idle_s=idle_s, fairness_weight=fairness_weight)
    assert costs.tolist() == [
        edge_cost(pickup_eta_s=e, idle_s=i, fairness_weight=fairness_weight)
        for e, (_, i) in zip(eta_s.tolist(), pairs, strict=True)
    ]


@pytest.mark.parametrize(
    ("distance_m", "eta_s", "idle_s", "why"),
    [
        (300, 70, 14 * 60 + 10, "0.3 km away, about 1 min; 14 min since your last trip"),
        (40, 6, None, "under 100 m away, under a minute; your first trip today"),
        (2_430, 381, 20, "2.4 km away, about 6 min; your last trip ended under a minute ago"),
        (5_960, 933, 3600 + 20 * 60, "6.0 km away, about 16 min; 1 h 20 min since your last trip"),
        (12_345, 1_934, 2 * 3600, "12 km away, about 32 min; 2 h since your last trip"),
        (999, 156, 60, "1.0 km away, about 3 min; 1 min since your last trip"),
        (300, 47, -3, "0.3 km away, under a minute; your last trip ended under a minute ago"),
    ],
)
def test_explain_says_why_in_plain_words(
    distance_m: float, eta_s: int, idle_s: float | None, why: str
) -> None:
    assert explain(pickup_distance_m=distance_m, pickup_eta_s=eta_s, idle_s=idle_s) == why


@pytest.mark.parametrize(
    ("distance_m", "eta_s", "idle_s", "message"),
    [
        (-5, 10, None, "pickup distance"),
        (float("nan"), 10, None, "pickup distance"),
        (100, -1, None, "pickup ETA"),
        (100, 10, float("inf"), "idle time"),
    ],
)
def test_explain_refuses_bad_figures(
    distance_m: float, eta_s: int, idle_s: float | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        explain(pickup_distance_m=distance_m, pickup_eta_s=eta_s, idle_s=idle_s)


credit_bounds = st.integers(min_value=0, max_value=3600)


@given(etas, etas, idle_times, weights, credit_bounds)
def test_the_bounded_cost_is_monotone_in_eta(
    a: int, b: int, idle_s: float, weight: Decimal, credit_max_s: int
) -> None:
    near, far = sorted((a, b))
    kwargs = {"idle_s": idle_s, "fairness_weight": weight, "fairness_credit_max_s": credit_max_s}
    assert edge_cost(pickup_eta_s=near, **kwargs) <= edge_cost(pickup_eta_s=far, **kwargs)  # type: ignore[arg-type]


@given(etas, idle_times, weights, credit_bounds)
def test_the_credit_never_exceeds_its_bound(
    eta_s: int, idle_s: float, weight: Decimal, credit_max_s: int
) -> None:
    cost = edge_cost(
        pickup_eta_s=eta_s,
        idle_s=idle_s,
        fairness_weight=weight,
        fairness_credit_max_s=credit_max_s,
    )
    assert eta_s - credit_max_s <= cost <= eta_s
    # Under the bound, the credit is the linear one.
    linear = edge_cost(pickup_eta_s=eta_s, idle_s=idle_s, fairness_weight=weight)
    assert cost == max(linear, eta_s - credit_max_s)


@given(etas, st.integers(min_value=1, max_value=5_000), idle_times, weights, credit_bounds)
def test_fairness_never_overrides_a_difference_beyond_the_bound(
    near_eta_s: int, extra_s: int, far_idle_s: float, weight: Decimal, credit_max_s: int
) -> None:
    """A driver more than the bound farther never costs less than a nearer one, however long
    they waited and however short the nearer one did."""
    far_eta_s = near_eta_s + credit_max_s + extra_s
    near = edge_cost(
        pickup_eta_s=near_eta_s,
        idle_s=0,
        fairness_weight=weight,
        fairness_credit_max_s=credit_max_s,
    )
    far = edge_cost(
        pickup_eta_s=far_eta_s,
        idle_s=far_idle_s,
        fairness_weight=weight,
        fairness_credit_max_s=credit_max_s,
    )
    assert far > near


def test_within_the_bound_the_longer_wait_still_wins() -> None:
    weight = Decimal("0.2")
    near = edge_cost(pickup_eta_s=100, idle_s=0, fairness_weight=weight, fairness_credit_max_s=60)
    far = edge_cost(pickup_eta_s=140, idle_s=1800, fairness_weight=weight, fairness_credit_max_s=60)
    assert (near, far) == (100, 80)


def test_a_negative_credit_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="fairness credit"):
        edge_cost(
            pickup_eta_s=100, idle_s=10, fairness_weight=Decimal("0.2"), fairness_credit_max_s=-1
        )
    with pytest.raises(ValueError, match="fairness credit"):
        edge_cost_array(
            pickup_eta_s=np.array([100]),
            idle_s=np.array([10.0]),
            fairness_weight=Decimal("0.2"),
            fairness_credit_max_s=-1,
        )


@given(st.lists(st.tuples(etas, idle_times), max_size=30), weights, credit_bounds)
def test_the_bounded_array_form_gives_the_same_integers(
    pairs: list[tuple[int, float]], weight: Decimal, credit_max_s: int
) -> None:
    eta_s = np.array([e for e, _ in pairs], dtype=np.int64)
    idle_s = np.array([i for _, i in pairs], dtype=np.float64)
    costs = edge_cost_array(
        pickup_eta_s=eta_s,
        idle_s=idle_s,
        fairness_weight=weight,
        fairness_credit_max_s=credit_max_s,
    )
    assert costs.tolist() == [
        edge_cost(
            pickup_eta_s=e, idle_s=i, fairness_weight=weight, fairness_credit_max_s=credit_max_s
        )
        for e, i in pairs
    ]


# --- the earnings credit and the rider's credit for waiting ---------------------------------

shortfalls = st.floats(min_value=0, max_value=1, allow_nan=False)
waits = st.floats(min_value=-5, max_value=2 * 3600, allow_nan=False)
optional_bounds = st.none() | credit_bounds


def _full_cost(
    eta_s: int,
    fairness: tuple[float, Decimal, int | None, float, int | None],
    wait: tuple[float, int | None] = (0.0, None),
) -> int:
    idle_s, weight, credit_max_s, shortfall, earnings_max_s = fairness
    request_wait_s, rider_max_s = wait
    return edge_cost(
        pickup_eta_s=eta_s,
        idle_s=idle_s,
        fairness_weight=weight,
        fairness_credit_max_s=credit_max_s,
        earnings_shortfall=shortfall,
        earnings_credit_max_s=earnings_max_s,
        request_wait_s=request_wait_s,
        rider_wait_credit_max_s=rider_max_s,
    )


fairness_inputs = st.tuples(idle_times, weights, optional_bounds, shortfalls, optional_bounds)
wait_inputs = st.tuples(waits, optional_bounds)


@given(etas, etas, fairness_inputs, wait_inputs)
def test_the_full_cost_is_monotone_in_eta(
    a: int,
    b: int,
    fairness: tuple[float, Decimal, int | None, float, int | None],
    wait: tuple[float, int | None],
) -> None:
    near, far = sorted((a, b))
    assert _full_cost(near, fairness, wait) <= _full_cost(far, fairness, wait)


@given(etas, st.integers(min_value=1, max_value=5_000), fairness_inputs, credit_bounds, wait_inputs)
def test_no_earnings_credit_overrides_a_difference_beyond_the_bound(
    near_eta_s: int,
    extra_s: int,
    far: tuple[float, Decimal, int | None, float, int | None],
    credit_max_s: int,
    wait: tuple[float, int | None],
) -> None:
    """Under `fairness_credit_max_s`, a driver farther than the bound never costs less than a
    nearer one for the same request, whatever either one waited or earned this shift."""
    idle_s, weight, _, shortfall, earnings_max_s = far
    far_cost = _full_cost(
        near_eta_s + credit_max_s + extra_s,
        (idle_s, weight, credit_max_s, shortfall, earnings_max_s),
        wait,
    )
    near_cost = _full_cost(near_eta_s, (0.0, weight, credit_max_s, 0.0, earnings_max_s), wait)
    assert far_cost > near_cost


@given(etas, shortfalls, credit_bounds)
def test_the_earnings_credit_is_the_shortfall_share_of_its_maximum(
    eta_s: int, shortfall: float, earnings_max_s: int
) -> None:
    cost = _full_cost(eta_s, (0.0, Decimal(0), None, shortfall, earnings_max_s))
    assert cost == round(eta_s - earnings_max_s * shortfall)
    assert eta_s - earnings_max_s <= cost <= eta_s


@given(etas, etas, waits, credit_bounds, fairness_inputs, fairness_inputs)
def test_the_riders_credit_never_changes_which_driver_a_request_prefers(
    a: int,
    b: int,
    request_wait_s: float,
    rider_max_s: int,
    one: tuple[float, Decimal, int | None, float, int | None],
    other: tuple[float, Decimal, int | None, float, int | None],
) -> None:
    """The same for every candidate of a request: it moves all of them by the same seconds
    (give or take the rounding of each cost to the second)."""
    without = _full_cost(a, one) - _full_cost(b, other)
    with_wait = _full_cost(a, one, (request_wait_s, rider_max_s)) - _full_cost(
        b, other, (request_wait_s, rider_max_s)
    )
    assert abs(with_wait - without) <= 1


@given(etas, waits, waits, credit_bounds)
def test_a_longer_wait_never_costs_more_and_the_riders_credit_is_bounded(
    eta_s: int, a: float, b: float, rider_max_s: int
) -> None:
    shorter, longer = sorted((a, b))
    none = (0.0, Decimal(0), None, 0.0, None)
    cost_longer = _full_cost(eta_s, none, (longer, rider_max_s))
    assert cost_longer <= _full_cost(eta_s, none, (shorter, rider_max_s))
    assert eta_s - rider_max_s <= cost_longer <= eta_s


@given(
    st.lists(st.tuples(etas, idle_times, shortfalls, waits), max_size=30),
    weights,
    optional_bounds,
    optional_bounds,
    optional_bounds,
)
def test_the_full_array_form_gives_the_same_integers(
    rows: list[tuple[int, float, float, float]],
    weight: Decimal,
    credit_max_s: int | None,
    earnings_max_s: int | None,
    rider_max_s: int | None,
) -> None:
    array = edge_cost_array(
        pickup_eta_s=np.array([r[0] for r in rows], dtype=np.int64),
        idle_s=np.array([r[1] for r in rows], dtype=np.float64),
        fairness_weight=weight,
        fairness_credit_max_s=credit_max_s,
        earnings_shortfall=np.array([r[2] for r in rows], dtype=np.float64),
        earnings_credit_max_s=earnings_max_s,
        request_wait_s=np.array([r[3] for r in rows], dtype=np.float64),
        rider_wait_credit_max_s=rider_max_s,
    )
    assert array.tolist() == [
        _full_cost(e, (i, weight, credit_max_s, s, earnings_max_s), (w, rider_max_s))
        for e, i, s, w in rows
    ]


earned = st.floats(min_value=0, max_value=2_000, allow_nan=False)
online = st.floats(min_value=0, max_value=16 * 3600, allow_nan=False)
references = st.floats(min_value=1, max_value=200, allow_nan=False)


@given(earned, earned, online, references)
def test_earning_more_in_the_same_time_never_raises_the_shortfall(
    a: float, b: float, online_s: float, reference: float
) -> None:
    less, more = sorted((a, b))
    shortfall = earnings_shortfall_array(np.array([less, more]), np.full(2, online_s), reference)
    assert 0 <= shortfall[1] <= shortfall[0] <= 1


@given(earned, references)
def test_a_driver_who_just_came_on_duty_has_no_shortfall(earnings: float, reference: float) -> None:
    [shortfall] = earnings_shortfall_array(np.array([earnings]), np.array([0.0]), reference)
    assert shortfall == 0


def test_the_shortfall_is_shrunk_toward_the_reference() -> None:
    # 20.00 in three hours against a median of 30.00 an hour: as if a fourth hour at 30.00 had
    # been worked, 12.50 an hour, 58% short of the median.
    [shortfall] = earnings_shortfall_array(np.array([20.0]), np.array([3 * 3600.0]), 30.0)
    assert shortfall == pytest.approx((30 - 50 / 4) / 30)
    assert EARNINGS_PRIOR_H == 1.0
    # Without a reference (nobody online long enough), no one is short.
    assert earnings_shortfall_array(np.array([0.0]), np.array([7200.0]), None).tolist() == [0.0]


def test_the_reference_is_the_median_rate_of_drivers_online_long_enough() -> None:
    earnings = np.array([30.0, 60.0, 90.0, 500.0])
    online_s = np.array([3600.0, 3600.0, 3600.0, REFERENCE_MIN_ONLINE_S - 1])
    assert reference_rate_per_h(earnings, online_s) == 60.0
    assert reference_rate_per_h(earnings[3:], online_s[3:]) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"earnings_shortfall": 1.5, "earnings_credit_max_s": 60}, "earnings shortfall"),
        ({"earnings_shortfall": -0.1, "earnings_credit_max_s": 60}, "earnings shortfall"),
        ({"earnings_shortfall": 0.5, "earnings_credit_max_s": -1}, "earnings credit"),
        ({"request_wait_s": float("nan"), "rider_wait_credit_max_s": 60}, "wait"),
        ({"request_wait_s": 10.0, "rider_wait_credit_max_s": -1}, "rider wait credit"),
    ],
)
def test_bad_fairness_inputs_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        edge_cost(pickup_eta_s=100, idle_s=0, fairness_weight=Decimal("0"), **kwargs)  # type: ignore[arg-type]


def test_explain_fairness_gives_both_drivers_figures() -> None:
    why = explain_fairness(
        offered_distance_m=900,
        nearer_distance_m=300,
        idle_s=(120, 40 * 60),
        shift=((96.0, 3 * 3600), (12.5, 3 * 3600 + 600)),
    )
    assert why == (
        "fairness gave you this trip over a driver 0.6 km nearer: they had earned 96.00 in "
        "3 h online this shift, you 12.50 in 3 h 10 min; they had waited 2 min, you 40 min"
    )
    assert explain_shift(earnings=20, online_s=3 * 3600 + 20, reference_per_h=23.333) == (
        "this shift you earned 20.00 in 3 h online, below the median of 23.33 an hour"
    )
