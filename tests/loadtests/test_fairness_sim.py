"""The fairness benchmark's simulated day records what each request got (its `Trace`), on a day
small enough to follow by hand, through the matcher's own code."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from bargaining.terms import load_founding_terms
from dispatch.matching import costs
from loadtests.bench_fairness import Day, Policy
from loadtests.fairness_sim import Trace, simulate


def test_the_trace_says_who_served_whom_and_who_was_in_reach() -> None:
    # One driver at the origin for an hour. At 0 s: a rider 500 m away, one 800 m away, one
    # 10 km away (beyond the 6 km radius); at 5 s another 1 km away. The driver takes the nearest
    # and is busy for over ten minutes: the others wait out max_wait_s (300 s) unserved.
    day = Day(
        request_at=np.array([0.0, 0.0, 0.0, 5.0]),
        request_xy=np.array([[500.0, 0.0], [800.0, 0.0], [10_000.0, 0.0], [1000.0, 0.0]]),
        trip_dxy=np.zeros((4, 2)),
        trip_s=np.array([600.0, 300.0, 300.0, 300.0]),
        trip_fare=np.array([10.0, 8.0, 8.0, 8.0]),
        shift_start=np.array([0.0]),
        shift_end=np.array([3600.0]),
        driver_xy=np.array([[0.0, 0.0]]),
        trip_m=np.array([3000.0, 2000.0, 2000.0, 2000.0]),
    )
    nearest = Policy("nearest", "nearest", Decimal("0"), None)
    terms = nearest.terms(load_founding_terms().dispatch)
    trace = Trace()
    figures = simulate(day, terms, 10.0, policy=nearest, trace=trace)

    assert figures["served_share"] == 0.25
    assert trace.driver_of.tolist() == [0, -1, -1, -1]
    assert trace.pickup_m[0] == 500.0
    assert trace.pickup_eta_s[0] == costs.pickup_eta_s(500.0)
    assert np.isnan(trace.pickup_m[1:]).all()
    # In reach: the driver was free and within 6 km of the first two at 0 s; never of the third
    # (too far), nor of the fourth (busy from its first batch on).
    assert trace.most_in_reach.tolist() == [1, 1, 0, 0]
    # Open at every batch of 10 s until max_wait_s has passed: 0..300 s, or 10..300 s.
    assert trace.batches_open.tolist() == [1, 31, 31, 30]
