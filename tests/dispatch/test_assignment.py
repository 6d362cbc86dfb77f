"""The batch assignment: examples, bad input, and optimality against brute force and scipy."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from dispatch.matching.assignment import Edge, solve, solve_arrays


def total(edges: list[Edge], assignment: dict[int, int]) -> int:
    cost = {(e.request, e.driver): e.cost for e in edges}
    return sum(cost[pair] for pair in assignment.items())


def test_the_nearest_pairs_when_they_do_not_conflict() -> None:
    edges = [Edge(0, 0, 60), Edge(0, 1, 300), Edge(1, 0, 400), Edge(1, 1, 90)]
    assert solve(2, 2, edges) == {0: 0, 1: 1}


def test_the_cheapest_total_beats_greedy_nearest_first() -> None:
    # Greedy takes r0-d0 (10) first and leaves r1 with d1 (100): 110. The optimum is 20 + 30.
    edges = [Edge(0, 0, 10), Edge(0, 1, 20), Edge(1, 0, 30), Edge(1, 1, 100)]
    assignment = solve(2, 2, edges)
    assert assignment == {0: 1, 1: 0}
    assert total(edges, assignment) == 50


def test_assigning_more_requests_beats_a_cheaper_total() -> None:
    # r0's cheapest driver is the only one r1 can have: r0 must take the dearer one.
    edges = [Edge(0, 0, 1), Edge(0, 1, 500), Edge(1, 0, 1)]
    assert solve(2, 2, edges) == {0: 1, 1: 0}


def test_one_more_assignment_is_worth_a_long_chain_of_dearer_swaps() -> None:
    # r0..r4 sit on their free drivers d0..d4; r5 can only have d0. Serving r5 moves every other
    # request one driver along, each move costing 900: 4500 more in all, far above the spread.
    edges = [Edge(i, i, 0) for i in range(5)] + [Edge(i, i + 1, 900) for i in range(5)]
    edges.append(Edge(5, 0, 0))
    assignment = solve(6, 6, edges)
    assert assignment == {0: 1, 1: 2, 2: 3, 3: 4, 4: 5, 5: 0}


def test_a_large_fairness_credit_does_not_strand_a_request() -> None:
    edges = [Edge(0, 0, -1000), Edge(0, 1, 5), Edge(1, 0, 5)]
    assert solve(2, 2, edges) == {0: 1, 1: 0}


def test_negative_costs_are_minimised_like_any_other() -> None:
    edges = [Edge(0, 0, -700), Edge(0, 1, -100), Edge(1, 0, -650), Edge(1, 1, -20)]
    # -700 + -20 = -720 against -100 + -650 = -750.
    assert solve(2, 2, edges) == {0: 1, 1: 0}


def test_requests_without_a_candidate_stay_unassigned() -> None:
    edges = [Edge(0, 2, 100), Edge(2, 2, 50)]
    assert solve(3, 3, edges) == {2: 2}


def test_more_requests_than_drivers_assigns_every_driver_once() -> None:
    edges = [Edge(r, d, 10 * r + d) for r in range(5) for d in range(2)]
    assignment = solve(5, 2, edges)
    assert len(assignment) == 2
    assert sorted(assignment.values()) == [0, 1]
    assert total(edges, assignment) == 0 + 1 + 10  # r0 and r1 take the two drivers


@pytest.mark.parametrize(
    "edges",
    [
        [Edge(0, 0, 500), Edge(0, 1, 100), Edge(0, 0, 30), Edge(0, 0, 700)],
        [Edge(0, 0, 30), Edge(0, 1, 100), Edge(0, 0, 500)],
        [Edge(0, 1, 100), Edge(0, 0, 700), Edge(0, 0, 30)],
    ],
)
def test_duplicate_edges_keep_the_cheapest(edges: list[Edge]) -> None:
    assert solve(1, 2, edges) == {0: 0}


@pytest.mark.parametrize(
    ("num_requests", "num_drivers", "edges"),
    [(0, 0, []), (3, 0, []), (0, 4, []), (3, 4, [])],
)
def test_empty_input_assigns_nothing(
    num_requests: int, num_drivers: int, edges: list[Edge]
) -> None:
    assert solve(num_requests, num_drivers, edges) == {}


@pytest.mark.parametrize(
    ("num_requests", "num_drivers", "edge", "message"),
    [
        (2, 2, Edge(2, 0, 1), "request 2, outside the batch of 2"),
        (2, 2, Edge(-1, 0, 1), "request -1"),
        (2, 2, Edge(0, 5, 1), "driver 5, outside the batch of 2"),
        (2, 2, Edge(0, -3, 1), "driver -3"),
        (0, 2, Edge(0, 0, 1), "request 0, outside the batch of 0"),
        (2, 0, Edge(0, 0, 1), "driver 0, outside the batch of 0"),
        (1, 1, Edge(0, 0, 2**64), "64-bit"),
    ],
)
def test_bad_edges_are_refused(
    num_requests: int, num_drivers: int, edge: Edge, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        solve(num_requests, num_drivers, [edge])


def test_negative_batch_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        solve(-1, 2, [])


def test_costs_too_wide_to_solve_exactly_are_refused() -> None:
    with pytest.raises(ValueError, match="too wide"):
        solve(2, 2, [Edge(0, 0, 0), Edge(1, 1, 2**61)])


def test_array_form_refuses_arrays_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="same length"):
        solve_arrays(2, 2, np.array([0, 1]), np.array([0]), np.array([1, 2]))


def test_array_form_agrees_with_edges() -> None:
    edges = [Edge(0, 0, 10), Edge(0, 1, 20), Edge(1, 0, 30), Edge(1, 1, 100), Edge(1, 0, 5)]
    as_arrays = solve_arrays(
        2,
        2,
        np.array([e.request for e in edges]),
        np.array([e.driver for e in edges]),
        np.array([e.cost for e in edges]),
    )
    assert as_arrays == solve(2, 2, edges) == {0: 1, 1: 0}


def brute_force(num_requests: int, num_drivers: int, edges: list[Edge]) -> tuple[int, int]:
    """(most requests assignable, least total cost among those) by dynamic programming."""
    cheapest: dict[tuple[int, int], int] = {}
    for e in edges:
        key = (e.request, e.driver)
        cheapest[key] = min(e.cost, cheapest.get(key, e.cost))

    @cache
    def best(request: int, used: int) -> tuple[int, int]:
        # Lexicographic minimum of (-assigned, cost) over the requests from `request` on.
        if request == num_requests:
            return (0, 0)
        options = [best(request + 1, used)]  # leave this request unassigned
        for driver in range(num_drivers):
            cost = cheapest.get((request, driver))
            if cost is not None and not used & (1 << driver):
                rest_assigned, rest_cost = best(request + 1, used | (1 << driver))
                options.append((rest_assigned - 1, rest_cost + cost))
        return min(options)

    negative_assigned, cost = best(0, 0)
    return -negative_assigned, cost


@st.composite
def instances(draw: st.DrawFn) -> tuple[int, int, list[Edge]]:
    num_requests = draw(st.integers(min_value=0, max_value=5))
    num_drivers = draw(st.integers(min_value=0, max_value=6))
    if num_requests == 0 or num_drivers == 0:
        return num_requests, num_drivers, []
    edge = st.builds(
        Edge,
        request=st.integers(min_value=0, max_value=num_requests - 1),
        driver=st.integers(min_value=0, max_value=num_drivers - 1),
        cost=st.integers(min_value=-1000, max_value=1000),
    )
    return num_requests, num_drivers, draw(st.lists(edge, max_size=20))


@settings(max_examples=300, deadline=None)
@given(instances())
def test_solve_is_optimal_against_brute_force(instance: tuple[int, int, list[Edge]]) -> None:
    num_requests, num_drivers, edges = instance
    assignment = solve(num_requests, num_drivers, edges)

    given_pairs = {(e.request, e.driver) for e in edges}
    assert all(pair in given_pairs for pair in assignment.items()), "only given edges are used"
    assert len(set(assignment.values())) == len(assignment), "each driver at most once"
    cheapest = {
        pair: min(e.cost for e in edges if (e.request, e.driver) == pair) for pair in given_pairs
    }
    assigned_cost = sum(cheapest[pair] for pair in assignment.items())

    assert (len(assignment), assigned_cost) == brute_force(num_requests, num_drivers, edges)


@pytest.mark.parametrize("seed", range(8))
def test_solve_matches_scipy_on_larger_dense_instances(seed: int) -> None:
    # Complete bipartite graphs: every request can be assigned, so the optimum is scipy's
    # rectangular linear_sum_assignment. Costs include the negative fairness credit.
    rng = np.random.default_rng(seed)
    num_requests, num_drivers = 40, 55
    cost = rng.integers(-720, 940, size=(num_requests, num_drivers))
    edges = [Edge(r, d, int(cost[r, d])) for r in range(num_requests) for d in range(num_drivers)]
    assignment = solve(num_requests, num_drivers, edges)
    rows, cols = linear_sum_assignment(cost)
    assert len(assignment) == num_requests
    assert sum(int(cost[r, d]) for r, d in assignment.items()) == int(cost[rows, cols].sum())
