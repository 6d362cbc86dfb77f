"""The assignment of one batch: requests to drivers, as many as possible, then as cheap as possible.

Pure: typed input, typed output, no I/O. The matcher builds the candidate edges (K nearest drivers
of each request, each with a cost from `dispatch.matching.costs`) and calls `solve`.

The model is a flow network (OR-Tools `SimpleMinCostFlow`, sparse, so a batch of 3000 requests x
5000 drivers with ~10 candidates each is ~38k arcs, not 15M):

    source --(cap 1)--> request --(cap 1, edge cost)--> driver --(cap 1)--> sink

The source offers one unit per request. `solve_max_flow_with_min_cost` sends the largest flow the
network can carry (as many requests assigned as any matching can) and, among such flows, the
cheapest. A request without a reachable driver simply carries no flow, so every batch solves.

Why not an "unassigned" arc request -> sink at a cost U, solved with plain `solve`: for that to
prefer assigning more requests, U must exceed min(R, D) times the cost spread, not just the spread
(an augmenting path can swap every edge of a matching), and so large a U made OR-Tools' cost
scaling 2-3x slower at 3000 x 5000 (docs/performance.md, "Matching") for the same optimum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from ortools.graph.python import min_cost_flow

IntArray = npt.NDArray[np.int64]

# OR-Tools scales the costs by the number of nodes (+1) and answers BAD_COST_RANGE when the
# scaled costs come near the int64 range; such input is refused up front, with a margin of 8x.
# Costs in seconds are a few thousand at most, far below it.
MAX_SCALED_COST = 2**60


@dataclass(frozen=True, slots=True)
class Edge:
    """A candidate pairing of one request with one driver of the batch."""

    request: int  # index of the request in the batch
    driver: int  # index of the driver in the batch
    cost: int  # lower is better; may be negative (the fairness credit)


class AssignmentError(RuntimeError):
    """The solver did not reach an optimal solution (it should never happen for valid input)."""


def solve(num_requests: int, num_drivers: int, edges: Sequence[Edge]) -> dict[int, int]:
    """request index -> driver index. Maximises the number of requests assigned, then minimises
    the total cost; a request may stay unassigned (so every batch solves)."""
    count = len(edges)
    try:
        requests = np.fromiter((e.request for e in edges), dtype=np.int64, count=count)
        drivers = np.fromiter((e.driver for e in edges), dtype=np.int64, count=count)
        costs = np.fromiter((e.cost for e in edges), dtype=np.int64, count=count)
    except OverflowError as error:
        raise ValueError(f"an edge holds an integer out of the 64-bit range: {error}") from None
    return solve_arrays(num_requests, num_drivers, requests, drivers, costs)


def solve_arrays(
    num_requests: int,
    num_drivers: int,
    requests: IntArray,
    drivers: IntArray,
    costs: IntArray,
) -> dict[int, int]:
    """`solve` for edges given as three parallel integer arrays (request, driver, cost)."""
    # Data in: check it. Duplicate (request, driver) edges become parallel arcs; an optimal flow
    # only ever uses the cheapest of them (one unit reaches a request), so they need no sorting
    # out here, which saved a sort of every edge (docs/performance.md, "Matching").
    if num_requests < 0 or num_drivers < 0:
        raise ValueError(
            f"the batch sizes must not be negative (got {num_requests} requests, "
            f"{num_drivers} drivers)"
        )
    requests = np.asarray(requests, dtype=np.int64)
    drivers = np.asarray(drivers, dtype=np.int64)
    costs = np.asarray(costs, dtype=np.int64)
    if not requests.shape == drivers.shape == costs.shape or requests.ndim != 1:
        raise ValueError("requests, drivers and costs must be 1-d arrays of the same length")
    _check_range(requests, num_requests, "request")
    _check_range(drivers, num_drivers, "driver")
    if num_requests == 0 or num_drivers == 0 or requests.size == 0:
        return {}

    # Every maximum flow crosses the same number of candidate edges, so shifting all edge costs
    # by one constant changes no choice; non-negative costs keep OR-Tools on its fastest path.
    lowest, highest = int(costs.min()), int(costs.max())
    spread = highest - lowest
    num_nodes = num_requests + num_drivers + 2
    if spread * (num_nodes + 1) > MAX_SCALED_COST:
        raise ValueError(
            f"the edge costs span {spread}, too wide to solve a batch of {num_requests} "
            "requests exactly; costs are meant to be seconds"
        )
    shifted = costs - lowest

    # Model: nodes 0..R-1 are the requests, R..R+D-1 the drivers, then the source and the sink.
    source = num_requests + num_drivers
    sink = source + 1
    tails = np.concatenate(
        [
            np.full(num_requests, source, dtype=np.int32),  # source -> request
            requests.astype(np.int32),  # request -> driver: the candidate edges
            np.arange(num_requests, num_requests + num_drivers, dtype=np.int32),  # driver -> sink
        ]
    )
    heads = np.concatenate(
        [
            np.arange(num_requests, dtype=np.int32),
            (drivers + num_requests).astype(np.int32),
            np.full(num_drivers, sink, dtype=np.int32),
        ]
    )
    unit_costs = np.concatenate(
        [np.zeros(num_requests, dtype=np.int64), shifted, np.zeros(num_drivers, dtype=np.int64)]
    )
    # Constraints: every arc carries at most one unit, so a request gets at most one driver and a
    # driver at most one request.
    capacities = np.ones(tails.size, dtype=np.int64)

    solver = min_cost_flow.SimpleMinCostFlow()
    arcs = solver.add_arcs_with_capacity_and_unit_cost(tails, heads, capacities, unit_costs)
    solver.set_nodes_supplies(
        np.array([source, sink], dtype=np.int32),
        np.array([num_requests, -num_requests], dtype=np.int64),
    )

    # Objective: the most flow, then the least cost; solve, and check the status before reading.
    status = solver.solve_max_flow_with_min_cost()
    if status != solver.OPTIMAL:
        raise AssignmentError(
            f"the max-flow min-cost solve ended with status {status.name} "
            f"({num_requests} requests, {num_drivers} drivers, {requests.size} edges)"
        )

    edge_arcs = np.asarray(arcs, dtype=np.int32)[num_requests : num_requests + requests.size]
    used = np.asarray(solver.flows(edge_arcs)) > 0
    return dict(zip(requests[used].tolist(), drivers[used].tolist(), strict=True))


def _check_range(indices: IntArray, size: int, what: str) -> None:
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= size):
        bad = indices[(indices < 0) | (indices >= size)]
        raise ValueError(
            f"an edge refers to {what} {int(bad[0])}, outside the batch of {size} {what}s "
            f"(valid indices 0..{size - 1})"
        )
