"""The bounds of engaged time (pay.engaged): pure, by example and by property."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bargaining.terms import load_founding_terms
from pay.engaged import Bounds, bounds_of, engaged_seconds

T0 = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_founding_bounds_double_the_estimates_and_add_five_minutes() -> None:
    terms = load_founding_terms().dispatch
    assert bounds_of(terms, pickup_eta_s=240, quote_duration_s=600) == Bounds(
        pickup_s=780, wait_s=300, ride_s=1500
    )
    # No accepted offer on record: the pickup gets only the fixed overrun.
    assert bounds_of(terms, pickup_eta_s=None, quote_duration_s=0).pickup_s == 300


def test_the_issues_attack_counts_the_pickup_and_the_free_wait_only() -> None:
    bounds = bounds_of(load_founding_terms().dispatch, pickup_eta_s=0, quote_duration_s=471)
    # Accepted at 0, arrived at 9 s, cancelled at 909 s: 9 + 300, not 909.
    engaged = engaged_seconds(
        assigned_at=T0, arrived_at=_at(9), started_at=None, ended_at=_at(909), bounds=bounds
    )
    assert engaged == 309


def test_a_trip_cancelled_before_the_arrival_counts_its_pickup_only() -> None:
    bounds = Bounds(pickup_s=600, wait_s=300, ride_s=900)
    assert (
        engaged_seconds(
            assigned_at=T0, arrived_at=None, started_at=None, ended_at=_at(2000), bounds=bounds
        )
        == 600
    )


# Whole milliseconds: what PostgreSQL's microseconds hold exactly, without float sums.
legs = st.integers(min_value=0, max_value=20_000_000).map(lambda ms: ms / 1000)
limits = st.integers(min_value=0, max_value=20_000)


@given(legs, legs, legs, limits, limits, limits)
def test_engaged_time_is_never_more_than_the_time_nor_the_bounds(
    pickup: float, wait: float, ride: float, pickup_s: int, wait_s: int, ride_s: int
) -> None:
    bounds = Bounds(pickup_s=pickup_s, wait_s=wait_s, ride_s=ride_s)
    engaged = engaged_seconds(
        assigned_at=T0,
        arrived_at=_at(pickup),
        started_at=_at(pickup + wait),
        ended_at=_at(pickup + wait + ride),
        bounds=bounds,
    )
    assert 0 <= engaged <= pickup + wait + ride
    assert engaged <= pickup_s + wait_s + ride_s
    # Within every bound, all of the time counts (to the whole second).
    if pickup <= pickup_s and wait <= wait_s and ride <= ride_s:
        assert engaged == int((_at(pickup + wait + ride) - T0).total_seconds())
