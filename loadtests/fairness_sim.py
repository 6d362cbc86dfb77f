"""The fairness benchmark's simulated day (docs/fairness.md, "How it is measured"): one replay of a
day's requests and shifts through the matcher's own code under one policy, and the figures of it.

`simulate` answers the benchmark's figures; given a `Trace`, it also records what each request and
driver got (who served it, the pickup, how many free drivers were in reach while it waited), for
the pay side (`loadtests.fairness_pay`) and the riders' side (`loadtests.fairness_riders`).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from bargaining.terms import DispatchTerms
from dispatch.matching import assignment, costs
from dispatch.matching.candidates import Candidate
from dispatch.matching.matcher import plan

if TYPE_CHECKING:
    from loadtests.bench_fairness import Day, Policy

K_NEAREST = 8
# The value-aware credit's reference: the median fare of the last hour's requests.
VALUE_WINDOW_S = 3600.0


@dataclass
class Trace:
    """What one replay gave each request and driver (filled by `simulate`). Per request: the
    driver who served it (-1: unserved), the pickup ETA and distance, the batches it waited
    open, and the most free drivers within the radius at any of those batches."""

    driver_of: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    pickup_eta_s: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    pickup_m: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    batches_open: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    most_in_reach: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))


def gini(values: npt.NDArray[np.float64]) -> float:
    """The Gini coefficient of non-negative values (0: all equal; 1: one has everything)."""
    v = np.sort(values)
    n = len(v)
    if n == 0 or v.sum() == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2 * (ranks * v).sum()) / (n * v.sum()) - (n + 1) / n)


def simulate(
    day: Day,
    terms: DispatchTerms,
    batch_s: float,
    window_start: float | None = None,
    policy: Policy | None = None,
    trace: Trace | None = None,
) -> dict[str, float]:
    """Replays `day` under `terms` (and the candidates per request and experimental credit of
    `policy`, when given). With `window_start`, answers instead the riders' figures of the
    requests made from then on: share served, wait to offer mean and p99 of those served, and
    the longest any request waited while a newer one nearby was served before it. `trace`, when
    given, is filled with what each request got."""
    k_nearest = policy.k if policy is not None else (terms.candidates_per_request or K_NEAREST)
    if policy is None and terms.candidates_per_request == 0:
        k_nearest = 0
    n_req = len(day.request_at)
    n_drv = len(day.shift_start)
    horizon = float(day.shift_end.max())
    trip_ids = [uuid.UUID(int=i + 1) for i in range(n_req)]
    driver_ids = [uuid.UUID(int=(1 << 64) + i) for i in range(n_drv)]
    driver_index = {d: i for i, d in enumerate(driver_ids)}
    trip_index = {t: i for i, t in enumerate(trip_ids)}
    pos = day.driver_xy.copy()
    busy_until = np.zeros(n_drv)
    free_since = day.shift_start.copy()
    had_trip = np.zeros(n_drv, dtype=bool)
    earnings = np.zeros(n_drv)
    trips_done = np.zeros(n_drv)
    # Each served trip's fare shared out among every driver on duty when it was offered, and
    # its count likewise: what perfectly even dispatch would give each driver (shift timing is
    # then all that separates them).
    fluid_earned = np.zeros(n_drv)
    fluid_trips = np.zeros(n_drv)
    served_fares: list[float] = []
    # Fares are the driver's shift earnings once the trip ends (what the matcher reads).
    pending = np.zeros(n_drv)
    offers = np.zeros(n_drv)
    shift_earned = np.zeros(n_drv)
    idle_gaps: list[float] = []
    etas: list[int] = []
    waits: list[float] = []
    offered_at = np.full(n_req, np.nan)
    empty_m = 0.0
    served = 0
    next_req = 0
    open_reqs: list[int] = []
    driver_of = np.full(n_req, -1, dtype=np.int64)
    pickup_eta = np.full(n_req, np.nan)
    pickup_m = np.full(n_req, np.nan)
    batches_open = np.zeros(n_req, dtype=np.int64)
    most_in_reach = np.zeros(n_req, dtype=np.int64)
    max_wait = float(terms.max_wait_s)
    radius = float(terms.max_pickup_distance_m)
    now = 0.0
    while now <= horizon:
        while next_req < n_req and day.request_at[next_req] <= now:
            open_reqs.append(next_req)
            next_req += 1
        open_reqs = [r for r in open_reqs if now - day.request_at[r] <= max_wait]
        on_duty = (day.shift_start <= now) & (now < day.shift_end)
        ended = (busy_until <= now) & (pending > 0)
        shift_earned[ended] += pending[ended]
        pending[ended] = 0.0
        free = np.flatnonzero(on_duty & (busy_until <= now))
        online_s = np.maximum(now - day.shift_start, 0.0)
        if trace is not None and open_reqs:
            waiting = np.asarray(open_reqs, dtype=np.int64)
            batches_open[waiting] += 1
            if len(free):
                in_reach = cKDTree(pos[free]).query_ball_point(
                    day.request_xy[waiting], radius, return_length=True
                )
                most_in_reach[waiting] = np.maximum(most_in_reach[waiting], in_reach)
        reference = costs.reference_rate_per_h(shift_earned[on_duty], online_s[on_duty])
        if open_reqs and len(free):
            edge_r, edge_d, edge_m = _edges(pos, free, day.request_xy, open_reqs, radius, k_nearest)
            chosen: list[tuple[int, int, int, float]] = []  # request, driver, ETA, distance
            recent = (day.request_at <= now) & (day.request_at > now - VALUE_WINDOW_S)
            if len(edge_r) and policy is not None and policy.experimental:
                credit = experimental_credit(
                    policy,
                    idle_s=now - free_since[edge_d],
                    earnings=shift_earned[edge_d],
                    online_s=online_s[edge_d],
                    reference_per_h=reference,
                    fare_ratio=day.trip_fare[edge_r] / float(np.median(day.trip_fare[recent])),
                )
                chosen = _solve(edge_r, edge_d, edge_m, credit)
            elif len(edge_r):
                candidates = [
                    Candidate(
                        trip_id=trip_ids[r],
                        driver_id=driver_ids[drv],
                        distance_m=float(m),
                        idle_s=now - free_since[drv],
                        since_last_trip=bool(had_trip[drv]),
                        shift_earnings=float(shift_earned[drv]),
                        shift_online_s=float(online_s[drv]),
                        request_wait_s=now - day.request_at[r],
                        fare=float(day.trip_fare[r]),
                    )
                    for r, drv, m in zip(edge_r.tolist(), edge_d.tolist(), edge_m, strict=True)
                ]
                # The real metered fare stands in for the quote the service makes at request time.
                drafts = plan(
                    candidates,
                    terms,
                    reference_per_h=reference,
                    reference_fare=float(np.median(day.trip_fare[recent])),
                ).drafts
                chosen = [
                    (
                        trip_index[d.trip_id],
                        driver_index[d.driver_id],
                        d.pickup_eta_s,
                        float(d.pickup_distance_m),
                    )
                    for d in drafts
                ]
            taken = set()
            on_duty_now = np.flatnonzero(on_duty)
            for r, drv, pickup_s, distance_m in chosen:
                taken.add(r)
                served += 1
                offers[drv] += 1
                if had_trip[drv]:
                    idle_gaps.append(now - free_since[drv])
                etas.append(pickup_s)
                waits.append(now - day.request_at[r])
                offered_at[r] = now
                driver_of[r], pickup_eta[r], pickup_m[r] = drv, pickup_s, distance_m
                empty_m += distance_m * costs.DETOUR_FACTOR
                end = now + pickup_s + day.trip_s[r]
                busy_until[drv] = end
                free_since[drv] = end
                had_trip[drv] = True
                earnings[drv] += day.trip_fare[r]
                trips_done[drv] += 1
                fluid_earned[on_duty_now] += day.trip_fare[r] / len(on_duty_now)
                fluid_trips[on_duty_now] += 1.0 / len(on_duty_now)
                served_fares.append(float(day.trip_fare[r]))
                pending[drv] = day.trip_fare[r]
                pos[drv] = day.request_xy[r] + day.trip_dxy[r]
            open_reqs = [r for r in open_reqs if r not in taken]
        now += batch_s
    if trace is not None:
        trace.driver_of, trace.pickup_eta_s, trace.pickup_m = driver_of, pickup_eta, pickup_m
        trace.batches_open, trace.most_in_reach = batches_open, most_in_reach
    if window_start is not None:
        return overload_figures(day, offered_at, window_start)
    online_h = (day.shift_end - day.shift_start) / 3600.0
    worked = online_h > 0.5
    per_hour = earnings[worked] / online_h[worked]
    eta = np.asarray(etas, dtype=np.float64)
    wait = np.asarray(waits, dtype=np.float64)
    return {
        "served_share": served / max(n_req, 1),
        "eta_mean_s": float(eta.mean()) if len(eta) else 0.0,
        "eta_p90_s": float(np.percentile(eta, 90)) if len(eta) else 0.0,
        "wait_mean_s": float(wait.mean()) if len(wait) else 0.0,
        "wait_p99_s": float(np.percentile(wait, 99)) if len(wait) else 0.0,
        "earn_median": float(np.median(per_hour)),
        "earn_p10": float(np.percentile(per_hour, 10)),
        "earn_gini": gini(per_hour),
        "idle_p90_s": float(np.percentile(idle_gaps, 90)) if idle_gaps else 0.0,
        "offers_per_hour": float(offers[worked].sum() / online_h[worked].sum()),
        "empty_km_per_trip": empty_m / 1000.0 / max(served, 1),
        "trips_gini": gini(trips_done[worked] / online_h[worked]),
        "timing_gini": gini(fluid_earned[worked] / online_h[worked]),
        "lottery_gini": fare_lottery_gini(
            fluid_trips[worked], online_h[worked], np.asarray(served_fares), seed=n_req
        ),
    }


def fare_lottery_gini(
    expected_trips: npt.NDArray[np.float64],
    online_h: npt.NDArray[np.float64],
    fares: npt.NDArray[np.float64],
    seed: int,
    draws: int = 20,
) -> float:
    """The Gini of earnings per online hour if each driver had exactly their even share of the
    trips (`expected_trips`, rounded at random to a whole number) and each trip's fare were one
    of the day's fares drawn at random: what the spread of fares alone leaves, averaged over
    `draws` draws."""
    if not len(fares):
        return 0.0
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        whole = np.floor(expected_trips + rng.random(len(expected_trips))).astype(np.int64)
        drawn = rng.choice(fares, size=int(whole.sum()))
        owner = np.repeat(np.arange(len(whole)), whole)
        earned = np.bincount(owner, weights=drawn, minlength=len(whole))
        values.append(gini(earned / online_h))
    return float(np.mean(values))


def _edges(
    pos: npt.NDArray[np.float64],
    free: npt.NDArray[np.int64],
    request_xy: npt.NDArray[np.float64],
    open_reqs: list[int],
    radius: float,
    k: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Each open request's candidate drivers within `radius`: its `k` nearest free drivers
    (0: every free driver within it), as parallel arrays of request, driver and distance."""
    tree = cKDTree(pos[free])
    points = request_xy[open_reqs]
    rs: list[int] = []
    ds: list[int] = []
    ms: list[float] = []
    if k == 0:
        for row, near in enumerate(tree.query_ball_point(points, radius)):
            near = np.asarray(near, dtype=np.int64)
            dist = np.hypot(*(pos[free[near]] - points[row]).T) if len(near) else []
            rs += [open_reqs[row]] * len(near)
            ds += free[near].tolist()
            ms += list(dist)
    else:
        kk = min(k, len(free))
        dist, idx = tree.query(points, k=kk, distance_upper_bound=radius)
        dist = np.asarray(dist).reshape(len(open_reqs), kk)
        idx = np.asarray(idx).reshape(len(open_reqs), kk)
        for row, r in enumerate(open_reqs):
            for d, j in zip(dist[row], idx[row], strict=True):
                if not math.isfinite(d):
                    break
                rs.append(r)
                ds.append(int(free[j]))
                ms.append(float(d))
    return (
        np.asarray(rs, dtype=np.int64),
        np.asarray(ds, dtype=np.int64),
        np.asarray(ms, dtype=np.float64),
    )


def experimental_credit(
    policy: Policy,
    *,
    idle_s: npt.NDArray[np.float64],
    earnings: npt.NDArray[np.float64],
    online_s: npt.NDArray[np.float64],
    reference_per_h: float | None,
    fare_ratio: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Each edge's driver credit under the benchmark's experiments (not a form the service
    has): the idle credit, plus `earnings_max_s` x the shift-rate shortfall (signed with
    `policy.signed`: a driver above the median rate gets the mirror penalty, down to -1) x
    min(value_cap, the request's fare / the last hour's median fare), the shift rate shrunk
    toward the median by `policy.prior_h` hours; under the bound, the credit spans at most
    `credit_max_s` (from -half to +half of it when signed). With none of these, it gives the
    same costs as `dispatch.matching.costs` (the same figures, checked on seed 14)."""
    credit = float(policy.weight) * np.clip(idle_s, 0.0, float(costs.IDLE_CREDIT_CAP_S))
    if policy.earnings_max_s and reference_per_h:
        hours = online_s / 3600.0
        prior = policy.prior_h
        shrunk = (earnings + reference_per_h * prior) / (hours + prior)
        shortfall = np.clip(
            (reference_per_h - shrunk) / reference_per_h, -1.0 if policy.signed else 0.0, 1.0
        )
        value = np.minimum(policy.value_cap, fare_ratio) if policy.value_cap else 1.0
        credit = credit + policy.earnings_max_s * shortfall * value
    if policy.credit_max_s is not None:
        half = policy.credit_max_s / 2 if policy.signed else 0.0
        credit = np.clip(credit, -half, policy.credit_max_s - half)
    return credit


def _solve(
    edge_r: npt.NDArray[np.int64],
    edge_d: npt.NDArray[np.int64],
    edge_m: npt.NDArray[np.float64],
    credit: npt.NDArray[np.float64],
) -> list[tuple[int, int, int, float]]:
    """The batch's min-cost assignment (the matcher's solver) at pickup ETA - credit."""
    eta = costs.pickup_eta_s_array(edge_m)
    cost = np.rint(eta - credit).astype(np.int64)
    requests, r_index = np.unique(edge_r, return_inverse=True)
    drivers, d_index = np.unique(edge_d, return_inverse=True)
    chosen = assignment.solve_arrays(len(requests), len(drivers), r_index, d_index, cost)
    edge_of = {(int(r), int(d)): i for i, (r, d) in enumerate(zip(r_index, d_index, strict=True))}
    return [
        (
            int(requests[r]),
            int(drivers[d]),
            int(eta[edge_of[(r, d)]]),
            float(edge_m[edge_of[(r, d)]]),
        )
        for r, d in chosen.items()
    ]


def overload_figures(
    day: Day, offered_at: npt.NDArray[np.float64], window_start: float
) -> dict[str, float]:
    in_window = day.request_at >= window_start
    at = day.request_at[in_window]
    offered = offered_at[in_window]
    served = np.isfinite(offered)
    wait = offered[served] - at[served]
    # Passed over: a request that ended unserved, or was served after a request made later and
    # within 2 km of it had been served; counted among the window's requests.
    xy = day.request_xy[in_window]
    order = np.argsort(at)
    passed = 0
    tree = cKDTree(xy)
    for i in order:
        near = np.array(tree.query_ball_point(xy[i], 2000.0), dtype=np.int64)
        later = near[at[near] > at[i]]
        later_served = later[np.isfinite(offered[later])]
        mine = offered[i] if served[i] else np.inf
        if len(later_served) and (offered[later_served] < mine).any():
            passed += 1
    return {
        "requests": float(len(at)),
        "served_share": float(served.mean()) if len(at) else 0.0,
        "wait_mean_s": float(wait.mean()) if len(wait) else 0.0,
        "wait_p99_s": float(np.percentile(wait, 99)) if len(wait) else 0.0,
        "passed_over_share": passed / max(len(at), 1),
    }
