"""Matching benchmark: the time and quality of one dispatch batch on synthetic cities.

Instances: uniform and clustered cities of 100x200, 1000x2000 and 3000x5000 requests x drivers.
Timed for our pipeline: candidates (K nearest drivers within the max pickup distance, by
scipy's cKDTree on projected metres; the service asks PostGIS instead, measured separately),
costs (pickup ETAs from a learned `dispatch.matching.traveltime` model, then
`dispatch.matching.costs`, array forms) and solve (`dispatch.matching.assignment`). On the
same candidates and costs, two baselines: scipy's sparse min_weight_full_bipartite_matching (the
optimum, and a speed reference) and greedy nearest-first (a quality reference). Every instance
is checked: our solver's (assigned, total cost) must equal scipy's; a mismatch is printed loudly
and makes the exit status 1.

    python -m loadtests.bench_matching                    # everything, a few minutes at most
    python -m loadtests.bench_matching --sizes 1000x2000 --repeats 5 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import ortools
import scipy
from ortools.graph.python import min_cost_flow
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from scipy.spatial import cKDTree

from coop.geo import EARTH_RADIUS_M
from dispatch.matching import traveltime
from dispatch.matching.assignment import Edge, solve, solve_arrays
from dispatch.matching.costs import edge_cost_array, pickup_eta_s_array
from dispatch.matching.traveltime import TravelModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
T = TypeVar("T")

# A city the size of central Montréal: 24 km east-west by 18 km north-south.
CITY_LAT, CITY_LON = 45.53, -73.62
CITY_WIDTH_M, CITY_HEIGHT_M = 24_000.0, 18_000.0
DEFAULT_SIZES = ((100, 200), (1000, 2000), (3000, 5000))
DEFAULT_REPEATS = {100: 60, 1000: 30, 3000: 15}  # by number of requests
LAYOUTS = ("uniform", "clustered")


@dataclass(frozen=True)
class Instance:
    """One batch: request and driver positions (WGS 84) and each driver's time since last trip."""

    layout: str
    request_lat: FloatArray
    request_lon: FloatArray
    driver_lat: FloatArray
    driver_lon: FloatArray
    driver_idle_s: FloatArray


@dataclass(frozen=True)
class Candidates:
    """The candidate edges of a batch as parallel arrays."""

    requests: IntArray
    drivers: IntArray
    distance_m: FloatArray


@dataclass(frozen=True)
class Outcome:
    assignment: dict[int, int]
    assigned: int
    total_cost: int
    total_pickup_s: int


@dataclass
class Row:
    """What one (size, layout) measured over its repeats."""

    num_requests: int
    num_drivers: int
    layout: str
    edges: list[int] = field(default_factory=list)
    candidates_s: list[float] = field(default_factory=list)
    costs_s: list[float] = field(default_factory=list)
    # The same costs with the distance-only ETA of the model's prior (no cell lookups): the
    # baseline the travel-time model's lookups are measured against, in the same run.
    costs_constant_s: list[float] = field(default_factory=list)
    solve_s: list[float] = field(default_factory=list)
    pipeline_s: list[float] = field(default_factory=list)
    edge_list_solve_s: list[float] = field(default_factory=list)
    scipy_s: list[float] = field(default_factory=list)
    greedy_s: list[float] = field(default_factory=list)
    fair_solve_s: list[float] = field(default_factory=list)
    optimum_assigned: list[int] = field(default_factory=list)
    optimum_pickup_s: list[int] = field(default_factory=list)
    greedy_assigned: list[int] = field(default_factory=list)
    greedy_pickup_s: list[int] = field(default_factory=list)
    optimum_at_greedy_size_pickup_s: list[int] = field(default_factory=list)
    fair_assigned: list[int] = field(default_factory=list)
    fair_pickup_s: list[int] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)


def make_instance(layout: str, num_requests: int, num_drivers: int, seed: int) -> Instance:
    """A synthetic batch. Uniform: everything spread evenly over the city. Clustered: most
    requests come from a few hot spots (downtown, a stadium letting out, ...) while most drivers
    are spread over the city, so the hot spots have more requests than drivers nearby."""
    rng = np.random.default_rng(seed)

    def uniform(n: int) -> tuple[FloatArray, FloatArray]:
        return (
            rng.uniform(-CITY_WIDTH_M / 2, CITY_WIDTH_M / 2, n),
            rng.uniform(-CITY_HEIGHT_M / 2, CITY_HEIGHT_M / 2, n),
        )

    if layout == "uniform":
        rx, ry = uniform(num_requests)
        dx, dy = uniform(num_drivers)
    elif layout == "clustered":
        hot_x, hot_y = uniform(5)
        weights = rng.dirichlet(np.full(5, 2.0))

        def around_hot_spots(n: int, spread_m: float) -> tuple[FloatArray, FloatArray]:
            spot = rng.choice(5, size=n, p=weights)
            x = hot_x[spot] + rng.normal(0, spread_m, n)
            y = hot_y[spot] + rng.normal(0, spread_m, n)
            return (
                np.clip(x, -CITY_WIDTH_M / 2, CITY_WIDTH_M / 2),
                np.clip(y, -CITY_HEIGHT_M / 2, CITY_HEIGHT_M / 2),
            )

        rx, ry = _mix(rng, num_requests, 0.7, lambda n: around_hot_spots(n, 1000.0), uniform)
        dx, dy = _mix(rng, num_drivers, 0.5, lambda n: around_hot_spots(n, 2000.0), uniform)
    else:
        raise ValueError(f"unknown layout {layout!r}")

    metres_per_deg_lat = np.pi * EARTH_RADIUS_M / 180
    metres_per_deg_lon = metres_per_deg_lat * np.cos(np.radians(CITY_LAT))
    return Instance(
        layout=layout,
        request_lat=CITY_LAT + ry / metres_per_deg_lat,
        request_lon=CITY_LON + rx / metres_per_deg_lon,
        driver_lat=CITY_LAT + dy / metres_per_deg_lat,
        driver_lon=CITY_LON + dx / metres_per_deg_lon,
        # Time since last trip: most drivers a few minutes, some well past the credit's cap.
        driver_idle_s=rng.exponential(20 * 60, num_drivers),
    )


def _mix(
    rng: np.random.Generator,
    n: int,
    share: float,
    first: Callable[[int], tuple[FloatArray, FloatArray]],
    second: Callable[[int], tuple[FloatArray, FloatArray]],
) -> tuple[FloatArray, FloatArray]:
    k = int(rng.binomial(n, share))
    ax, ay = first(k)
    bx, by = second(n - k)
    order = rng.permutation(n)
    return np.concatenate([ax, bx])[order], np.concatenate([ay, by])[order]


def find_candidates(instance: Instance, *, k: int, max_pickup_distance_m: float) -> Candidates:
    """The K nearest drivers of each request within the max pickup distance (KD-tree)."""
    lat0 = float(np.mean(instance.driver_lat))
    scale_y = np.pi * EARTH_RADIUS_M / 180
    scale_x = scale_y * np.cos(np.radians(lat0))
    drivers_xy = np.column_stack([instance.driver_lon * scale_x, instance.driver_lat * scale_y])
    requests_xy = np.column_stack([instance.request_lon * scale_x, instance.request_lat * scale_y])
    num_drivers = len(drivers_xy)
    k = min(k, num_drivers)
    distance, index = cKDTree(drivers_xy).query(
        requests_xy, k=k, distance_upper_bound=max_pickup_distance_m
    )
    distance = distance.reshape(len(requests_xy), k)
    index = index.reshape(len(requests_xy), k)
    found = index < num_drivers  # missing neighbours come back as index n, distance inf
    rows = np.broadcast_to(np.arange(len(requests_xy))[:, None], index.shape)
    return Candidates(
        requests=rows[found].astype(np.int64),
        drivers=index[found].astype(np.int64),
        distance_m=distance[found].astype(np.float64),
    )


def city_travel_model(seed: int = 14) -> TravelModel:
    """A learned travel-time model over the synthetic city: 20,000 passages at 8-60 km/h
    spread over its cells and the week's hours, so every lookup meets a learned cell."""
    rng = np.random.default_rng(seed)
    n = 20_000
    lat = CITY_LAT + (rng.random(n) - 0.5) * CITY_HEIGHT_M / 111_195
    lon = CITY_LON + (rng.random(n) - 0.5) * CITY_WIDTH_M / (111_195 * np.cos(np.radians(CITY_LAT)))
    distance = rng.uniform(100, 1000, n)
    passages = traveltime.Passages(
        cell=traveltime.cells_of(lat, lon),
        hour=rng.integers(0, traveltime.HOURS, n),
        distance_m=distance,
        duration_s=distance / rng.uniform(8 / 3.6, 60 / 3.6, n),
    )
    return traveltime.learn(traveltime.CellStats.of(passages), version=1)


_CITY_MODEL: list[TravelModel] = []
# The hour of the week the batches are costed at (Thursday 08h: a busy one).
BENCH_HOUR = 3 * 24 + 8


def pickup_etas(instance: Instance, candidates: Candidates) -> IntArray:
    """Pickup ETAs from the learned travel-time model, as the matcher computes them: each
    driver's and each request's cell once, the midpoints' per edge."""
    if not _CITY_MODEL:
        _CITY_MODEL.append(city_travel_model())
    driver_cells = traveltime.cells_of(instance.driver_lat, instance.driver_lon)
    request_cells = traveltime.cells_of(instance.request_lat, instance.request_lon)
    return _CITY_MODEL[0].pickup_eta_s_array(
        distance_m=candidates.distance_m,
        from_lat=instance.driver_lat[candidates.drivers],
        from_lon=instance.driver_lon[candidates.drivers],
        to_lat=instance.request_lat[candidates.requests],
        to_lon=instance.request_lon[candidates.requests],
        hour=BENCH_HOUR,
        from_cell=driver_cells[candidates.drivers],
        to_cell=request_cells[candidates.requests],
    )


def edge_costs(
    instance: Instance, candidates: Candidates, fairness_weight: Decimal
) -> tuple[IntArray, IntArray]:
    """(pickup ETA, cost) of every candidate edge, the ETA from the learned travel-time model."""
    eta_s = pickup_etas(instance, candidates)
    cost = edge_cost_array(
        pickup_eta_s=eta_s,
        idle_s=instance.driver_idle_s[candidates.drivers],
        fairness_weight=fairness_weight,
    )
    return eta_s, cost


def outcome(
    assignment: dict[int, int], candidates: Candidates, eta_s: IntArray, cost: IntArray
) -> Outcome:
    """Totals of an assignment, looked up on the (cheapest) candidate edge of each pair."""
    num_drivers = int(candidates.drivers.max()) + 1 if candidates.drivers.size else 1
    pairs = candidates.requests * num_drivers + candidates.drivers
    order = np.lexsort((cost, pairs))
    first = np.ones(order.size, dtype=bool)
    first[1:] = pairs[order][1:] != pairs[order][:-1]
    cheapest = order[first]
    position = {int(p): int(i) for p, i in zip(pairs[cheapest], cheapest, strict=True)}
    chosen = np.array(
        [position[r * num_drivers + d] for r, d in assignment.items()], dtype=np.int64
    )
    return Outcome(
        assignment=assignment,
        assigned=len(assignment),
        total_cost=int(cost[chosen].sum()) if chosen.size else 0,
        total_pickup_s=int(eta_s[chosen].sum()) if chosen.size else 0,
    )


def scipy_optimum(
    num_requests: int, num_drivers: int, candidates: Candidates, cost: IntArray
) -> dict[int, int]:
    """The same objective solved by scipy's LAPJVsp. It needs a full matching of the rows, so
    each request also gets its own dummy column ("unassigned") at a cost U above min(R, D) times
    the cost spread, so that no cheaper total can come from leaving a request out; all weights
    are shifted to be >= 1 (scipy treats 0 as no edge), which adds the same constant to every
    full matching."""
    if cost.size == 0:
        return {}
    lowest = int(cost.min())
    spread = int(cost.max()) - lowest
    unassigned = min(num_requests, num_drivers) * spread + 1
    rows = np.concatenate([candidates.requests, np.arange(num_requests)])
    cols = np.concatenate([candidates.drivers, num_drivers + np.arange(num_requests)])
    weights = np.concatenate(
        [cost - lowest + 1, np.full(num_requests, unassigned + 1, dtype=np.int64)]
    ).astype(np.float64)
    # Duplicate entries would be summed by csr_matrix; the KD-tree gives none.
    matrix = csr_matrix((weights, (rows, cols)), shape=(num_requests, num_drivers + num_requests))
    row_ind, col_ind = min_weight_full_bipartite_matching(matrix)
    real = col_ind < num_drivers
    return dict(zip(row_ind[real].tolist(), col_ind[real].tolist(), strict=True))


def cheapest_of_size(
    num_requests: int, num_drivers: int, candidates: Candidates, eta_s: IntArray, size: int
) -> int:
    """The least total pickup time of any matching of exactly `size` requests, so that greedy,
    which strands requests the optimum serves, is compared at the number it did serve."""
    source, sink = num_requests + num_drivers, num_requests + num_drivers + 1
    tails = np.concatenate(
        [
            np.full(num_requests, source),
            candidates.requests,
            np.arange(num_requests, num_requests + num_drivers),
        ]
    ).astype(np.int32)
    heads = np.concatenate(
        [
            np.arange(num_requests),
            candidates.drivers + num_requests,
            np.full(num_drivers, sink),
        ]
    ).astype(np.int32)
    costs = np.concatenate([np.zeros(num_requests), eta_s, np.zeros(num_drivers)]).astype(np.int64)
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(
        tails, heads, np.ones(tails.size, dtype=np.int64), costs
    )
    flow.set_nodes_supplies(
        np.array([source, sink], dtype=np.int32), np.array([size, -size], dtype=np.int64)
    )
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"the reference flow of size {size} ended with {status.name}")
    return int(flow.optimal_cost())


def greedy_nearest_first(candidates: Candidates, cost: IntArray) -> dict[int, int]:
    """Cheapest edge first (nearest first when fairness is off), skipping taken drivers."""
    order = np.lexsort((candidates.distance_m, cost))
    assignment: dict[int, int] = {}
    taken: set[int] = set()
    for r, d in zip(
        candidates.requests[order].tolist(), candidates.drivers[order].tolist(), strict=True
    ):
        if r not in assignment and d not in taken:
            assignment[r] = d
            taken.add(d)
    return assignment


def timed(function: Callable[[], T]) -> tuple[T, float]:
    gc.collect()
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def run_once(
    row: Row,
    instance: Instance,
    *,
    k: int,
    max_pickup_distance_m: float,
    fairness_weight: Decimal,
) -> None:
    """Our pipeline and both baselines on one instance; appends the measures to `row`."""
    r, d = row.num_requests, row.num_drivers
    zero = Decimal(0)

    candidates, t_candidates = timed(
        lambda: find_candidates(instance, k=k, max_pickup_distance_m=max_pickup_distance_m)
    )
    (eta_s, cost), t_costs = timed(lambda: edge_costs(instance, candidates, zero))
    _, t_constant = timed(
        lambda: edge_cost_array(
            pickup_eta_s=pickup_eta_s_array(candidates.distance_m),
            idle_s=instance.driver_idle_s[candidates.drivers],
            fairness_weight=zero,
        )
    )
    row.costs_constant_s.append(t_constant)
    ours, t_solve = timed(lambda: solve_arrays(r, d, candidates.requests, candidates.drivers, cost))
    row.edges.append(int(cost.size))
    row.candidates_s.append(t_candidates)
    row.costs_s.append(t_costs)
    row.solve_s.append(t_solve)
    row.pipeline_s.append(t_candidates + t_costs + t_solve)

    # The same solve through the list-of-Edge interface, building the list included.
    def through_edges() -> dict[int, int]:
        edges = [
            Edge(a, b, c)
            for a, b, c in zip(
                candidates.requests.tolist(),
                candidates.drivers.tolist(),
                cost.tolist(),
                strict=True,
            )
        ]
        return solve(r, d, edges)

    via_edges, t_edges = timed(through_edges)
    row.edge_list_solve_s.append(t_edges)

    reference, t_scipy = timed(lambda: scipy_optimum(r, d, candidates, cost))
    greedy, t_greedy = timed(lambda: greedy_nearest_first(candidates, cost))
    row.scipy_s.append(t_scipy)
    row.greedy_s.append(t_greedy)

    optimum = outcome(ours, candidates, eta_s, cost)
    check(row, "fairness 0", optimum, outcome(reference, candidates, eta_s, cost))
    check(row, "fairness 0, Edge list", optimum, outcome(via_edges, candidates, eta_s, cost))
    greedy_outcome = outcome(greedy, candidates, eta_s, cost)
    row.optimum_assigned.append(optimum.assigned)
    row.optimum_pickup_s.append(optimum.total_pickup_s)
    row.greedy_assigned.append(greedy_outcome.assigned)
    row.greedy_pickup_s.append(greedy_outcome.total_pickup_s)
    row.optimum_at_greedy_size_pickup_s.append(
        cheapest_of_size(r, d, candidates, eta_s, greedy_outcome.assigned)
    )

    # With the agreement's fairness weight: the same candidates, other costs.
    (_, fair_cost), _ = timed(lambda: edge_costs(instance, candidates, fairness_weight))
    fair, t_fair = timed(
        lambda: solve_arrays(r, d, candidates.requests, candidates.drivers, fair_cost)
    )
    row.fair_solve_s.append(t_fair)
    fair_outcome = outcome(fair, candidates, eta_s, fair_cost)
    fair_reference = outcome(
        scipy_optimum(r, d, candidates, fair_cost), candidates, eta_s, fair_cost
    )
    check(row, f"fairness {fairness_weight}", fair_outcome, fair_reference)
    row.fair_assigned.append(fair_outcome.assigned)
    row.fair_pickup_s.append(fair_outcome.total_pickup_s)


def check(row: Row, what: str, ours: Outcome, reference: Outcome) -> None:
    """Ours must assign as many requests as the reference, at the same total cost."""
    if (ours.assigned, ours.total_cost) != (reference.assigned, reference.total_cost):
        message = (
            f"MISMATCH {row.num_requests}x{row.num_drivers} {row.layout} ({what}): ours assigns "
            f"{ours.assigned} at total cost {ours.total_cost}, the reference {reference.assigned} "
            f"at {reference.total_cost}"
        )
        print("!" * 80, message, "!" * 80, sep="\n", file=sys.stderr)
        row.mismatches.append(message)


def ms(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q) * 1000:.1f}"


def ratio(a: list[float], b: list[float]) -> str:
    return f"{np.median(a) / np.median(b):.2f}x"


def report(rows: list[Row], args: argparse.Namespace, elapsed_s: float) -> str:
    lines = [
        f"Machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, ortools {ortools.__version__}. "
        f"K = {args.k} candidates within {args.max_pickup_distance_m:.0f} m; "
        f"{elapsed_s:.0f} s in all.",
        "",
        "Time (ms) of one batch at fairness weight 0, median / p99 over the repeats; the solve "
        "ratios compare medians of the solve step alone:",
        "",
        "| size | layout | runs | edges | candidates | costs | costs, constant ETA | solve "
        "| **pipeline** | via Edge list | scipy LAPJVsp | scipy / ours | greedy | greedy / ours |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.num_requests}x{row.num_drivers} | {row.layout} | {len(row.pipeline_s)} "
            f"| {int(np.median(row.edges))} "
            f"| {ms(row.candidates_s, 50)} / {ms(row.candidates_s, 99)} "
            f"| {ms(row.costs_s, 50)} / {ms(row.costs_s, 99)} "
            f"| {ms(row.costs_constant_s, 50)} / {ms(row.costs_constant_s, 99)} "
            f"| {ms(row.solve_s, 50)} / {ms(row.solve_s, 99)} "
            f"| **{ms(row.pipeline_s, 50)} / {ms(row.pipeline_s, 99)}** "
            f"| {ms(row.edge_list_solve_s, 50)} / {ms(row.edge_list_solve_s, 99)} "
            f"| {ms(row.scipy_s, 50)} / {ms(row.scipy_s, 99)} | {ratio(row.scipy_s, row.solve_s)} "
            f"| {ms(row.greedy_s, 50)} / {ms(row.greedy_s, 99)} "
            f"| {ratio(row.greedy_s, row.solve_s)} |"
        )
    lines += [
        "",
        "Quality, summed over the runs. Assigned requests and their mean pickup ETA; greedy "
        "strands requests the optimum serves, so it is compared with the least pickup time of "
        "any matching of the size greedy reached (min-cost flow of exactly that many units). "
        f"`fair` is the optimum at fairness weight {args.fairness_weight}; it always assigns as "
        "many as the optimum at 0 (the most that can be assigned does not depend on costs).",
        "",
        "| size | layout | optimum: assigned, mean pickup | greedy: assigned, mean pickup "
        "| optimal pickup time at greedy's count vs greedy | fair: assigned, mean pickup "
        "| fair's pickup time vs optimum | equal to scipy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        opt_n, opt_t = sum(row.optimum_assigned), sum(row.optimum_pickup_s)
        gr_n, gr_t = sum(row.greedy_assigned), sum(row.greedy_pickup_s)
        fa_n, fa_t = sum(row.fair_assigned), sum(row.fair_pickup_s)
        at_greedy_size = sum(row.optimum_at_greedy_size_pickup_s)
        checked = "yes" if not row.mismatches else f"**NO: {len(row.mismatches)} mismatches**"
        lines.append(
            f"| {row.num_requests}x{row.num_drivers} | {row.layout} "
            f"| {opt_n}, {mean_s(opt_t, opt_n)} | {gr_n}, {mean_s(gr_t, gr_n)} "
            f"| {change(at_greedy_size, gr_t)} "
            f"| {fa_n}, {mean_s(fa_t, fa_n)} | {change(fa_t, opt_t)} "
            f"| {checked} ({3 * len(row.pipeline_s)} checks) |"
        )
    return "\n".join(lines)


def mean_s(total_s: int, count: int) -> str:
    return f"{total_s / count:.1f} s" if count else "-"


def change(total: int, base: int) -> str:
    return f"{(total / base - 1) * 100:+.1f}%" if base else "-"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def parse_size(text: str) -> tuple[int, int]:
    requests, _, drivers = text.partition("x")
    try:
        size = int(requests), int(drivers)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size is REQUESTSxDRIVERS, got {text!r}") from None
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench_matching", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: [parse_size(s) for s in text.split(",")],
        default=list(DEFAULT_SIZES),
        help="comma-separated REQUESTSxDRIVERS (default: 100x200,1000x2000,3000x5000)",
    )
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="uniform,clustered")
    parser.add_argument(
        "--repeats", type=int, help="instances per size and layout (default: 60, 30, 15 by size)"
    )
    parser.add_argument("--k", type=int, default=10, help="candidate drivers per request")
    parser.add_argument("--max-pickup-distance-m", type=float, default=6000.0)
    parser.add_argument("--fairness-weight", type=Decimal, default=Decimal("0.2"))
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile our pipeline on the largest size"
    )
    args = parser.parse_args(argv)
    layouts = [name for name in args.layouts.split(",") if name]
    for name in layouts:
        if name not in LAYOUTS:
            parser.error(f"unknown layout {name!r}; choose from {', '.join(LAYOUTS)}")
    if args.k < 1 or (args.repeats is not None and args.repeats < 1):
        parser.error("--k and --repeats must be at least 1")

    started = time.perf_counter()
    rows: list[Row] = []
    options = {
        "k": args.k,
        "max_pickup_distance_m": args.max_pickup_distance_m,
        "fairness_weight": args.fairness_weight,
    }
    for num_requests, num_drivers in args.sizes:
        repeats = args.repeats or DEFAULT_REPEATS.get(num_requests, 10)
        for layout_number, layout in enumerate(layouts):
            row = Row(num_requests, num_drivers, layout)
            # One untimed warm-up run, so that imports and first allocations are not measured.
            run_once(
                Row(num_requests, num_drivers, layout),
                make_instance(layout, num_requests, num_drivers, args.seed - 1),
                **options,
            )
            for repeat in range(repeats):
                seed = args.seed + 1000 * layout_number + repeat
                run_once(row, make_instance(layout, num_requests, num_drivers, seed), **options)
            rows.append(row)
            print(
                f"{num_requests}x{num_drivers} {layout}: pipeline median "
                f"{ms(row.pipeline_s, 50)} ms, p99 {ms(row.pipeline_s, 99)} ms",
                file=sys.stderr,
            )

    print(report(rows, args, time.perf_counter() - started))

    if args.profile:
        num_requests, num_drivers = max(args.sizes)
        print(profile(num_requests, num_drivers, layouts[-1], args))

    mismatches = [m for row in rows for m in row.mismatches]
    if mismatches:
        print(f"\n{len(mismatches)} MISMATCHES against scipy:", *mismatches, sep="\n")
        return 1
    return 0


def profile(num_requests: int, num_drivers: int, layout: str, args: argparse.Namespace) -> str:
    """cProfile of our pipeline (candidates, costs, solve) on five instances."""
    instances = [make_instance(layout, num_requests, num_drivers, args.seed + i) for i in range(5)]
    profiler = cProfile.Profile()
    profiler.enable()
    for instance in instances:
        candidates = find_candidates(
            instance, k=args.k, max_pickup_distance_m=args.max_pickup_distance_m
        )
        _, cost = edge_costs(instance, candidates, args.fairness_weight)
        solve_arrays(num_requests, num_drivers, candidates.requests, candidates.drivers, cost)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    return f"\nProfile, {num_requests}x{num_drivers} {layout}, 5 instances:\n{out.getvalue()}"


if __name__ == "__main__":
    sys.exit(main())
