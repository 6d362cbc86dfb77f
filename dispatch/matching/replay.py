"""Days of requests and drivers' shifts replayed through the matcher's own planner under a set of
terms: what a proposal would change in dispatch and pay (docs/fairness.md, "A proposal's impact").

Pure and CPU-bound: the caller runs it off the event loop. Every batch (every `REPLAY_BATCH_S`
simulated seconds) the open requests and free drivers go through `planning.plan` with the terms'
costs; candidates are each request's nearest free drivers within the terms' pickup radius (the
terms' `candidates_per_request`, else the service's 8), found with a k-d tree instead of PostGIS.
Every offer is accepted; the driver drives the pickup ETA, then the trip, and is free where it
ended. A request without an offer after `max_wait_s` ends unserved. Each trip is priced under the
terms (`bargaining.fares.price_trip`: the drivers' part and the co-op's commission), and each
driver's day is topped up to the hourly floor (`pay.engaged_floor_per_hour` per engaged hour,
from the offer to the trip's end).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from bargaining.fares import STANDARD, price_trip
from bargaining.terms import Terms
from dispatch.matching import costs
from dispatch.matching.candidates import Candidate, candidates_per_request
from dispatch.matching.planning import plan

FloatArray = npt.NDArray[np.float64]

# Batches every 10 simulated seconds, as the fairness benchmark: the figures compare policies,
# and the agreement's 2 s would take five times the solves for the same comparison.
REPLAY_BATCH_S = 10.0
# The service's COOP_MATCHER_CANDIDATES_K, for terms that do not state their own.
DEFAULT_CANDIDATES = 8
# Shifts shorter than this say nothing about a rate per online hour: left out of the figures.
MIN_ONLINE_H = 0.5
# The median fare of the last hour's requests is the fare scaling's reference, as in service.
FARE_WINDOW_S = 3600.0


class BudgetExceeded(Exception):
    """The replay ran past its budget of seconds: stopped, nothing half-reported."""


@dataclass(frozen=True)
class Day:
    """One day to replay: requests as they arrived and the drivers' shifts, in metres of a local
    projection and seconds from the day's start (requests in time order)."""

    label: str
    request_at_s: FloatArray
    pickup_xy: FloatArray  # (n, 2)
    dropoff_xy: FloatArray  # (n, 2)
    trip_distance_m: FloatArray  # what the meter would read, for the fare
    trip_s: FloatArray
    shift_start_s: FloatArray
    shift_end_s: FloatArray
    driver_xy: FloatArray  # (m, 2): where each shift starts


@dataclass(frozen=True)
class DayFigures:
    """What one day gave under one set of terms (money in the terms' currency)."""

    requests: int
    served_share: float
    pickup_eta_mean_s: float
    pickup_eta_p90_s: float
    earnings_gini: float
    earnings_p10_per_h: float
    earnings_median_per_h: float
    pay_gini: float
    pay_p10_per_h: float
    pay_median_per_h: float
    floor_top_ups: float
    commission: float
    fairness_share: float  # of the offers, those fairness gave to a farther driver
    fairness_extra_max_m: float  # the largest extra pickup distance fairness caused


FIGURES = tuple(DayFigures.__dataclass_fields__)


def gini(values: FloatArray) -> float:
    """The Gini coefficient of non-negative values (0: all equal; 1: one has everything)."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = len(v)
    if n == 0 or v.sum() == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2 * (ranks * v).sum()) / (n * v.sum()) - (n + 1) / n)


def _priced(day: Day, terms: Terms) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Each request's fare, the drivers' part of it and the co-op's commission under `terms`."""
    total, driver, coop = [], [], []
    for distance_m, trip_s in zip(day.trip_distance_m, day.trip_s, strict=True):
        fare = price_trip(
            terms,
            agreement_version=0,
            service_class=STANDARD,
            distance_m=max(int(distance_m), 0),
            duration_s=max(int(trip_s), 0),
        )
        total.append(float(fare.total))
        driver.append(float(fare.driver_earnings))
        coop.append(float(fare.coop_commission))
    return np.array(total), np.array(driver), np.array(coop)


def replay_day(
    day: Day, terms: Terms, *, deadline: float | None = None, batch_s: float = REPLAY_BATCH_S
) -> DayFigures:
    """The day under `terms`. `deadline` is a `time.monotonic()` value past which it raises
    `BudgetExceeded` (checked at every batch)."""
    dispatch = terms.dispatch
    k = candidates_per_request(dispatch, DEFAULT_CANDIDATES)
    fare, earned_by_trip, commission_by_trip = _priced(day, terms)
    n_req, n_drv = len(day.request_at_s), len(day.shift_start_s)
    trip_ids = [uuid.UUID(int=i + 1) for i in range(n_req)]
    driver_ids = [uuid.UUID(int=(1 << 64) + i) for i in range(n_drv)]
    trip_index = {t: i for i, t in enumerate(trip_ids)}
    driver_index = {d: i for i, d in enumerate(driver_ids)}
    pos = day.driver_xy.astype(np.float64).copy()
    busy_until = np.zeros(n_drv)
    free_since = day.shift_start_s.astype(np.float64).copy()
    had_trip = np.zeros(n_drv, dtype=bool)
    earnings = np.zeros(n_drv)
    engaged_s = np.zeros(n_drv)
    pending = np.zeros(n_drv)  # a trip's pay counts in the shift's earnings once it ends
    shift_earned = np.zeros(n_drv)
    etas: list[int] = []
    fairness_m: list[int] = []
    commission = 0.0
    open_reqs: list[int] = []
    next_req = 0
    horizon = float(max(day.shift_end_s.max(initial=0.0), day.request_at_s.max(initial=0.0)))
    now = 0.0
    while now <= horizon + dispatch.max_wait_s:
        if deadline is not None and time.monotonic() > deadline:
            raise BudgetExceeded
        while next_req < n_req and day.request_at_s[next_req] <= now:
            open_reqs.append(next_req)
            next_req += 1
        open_reqs = [r for r in open_reqs if now - day.request_at_s[r] <= dispatch.max_wait_s]
        on_duty = (day.shift_start_s <= now) & (now < day.shift_end_s)
        ended = (busy_until <= now) & (pending > 0)
        shift_earned[ended] += pending[ended]
        pending[ended] = 0.0
        free = np.flatnonzero(on_duty & (busy_until <= now))
        online_s = np.maximum(now - day.shift_start_s, 0.0)
        if open_reqs and len(free):
            edge_r, edge_d, edge_m = _edges(
                pos, free, day.pickup_xy, open_reqs, float(dispatch.max_pickup_distance_m), k
            )
            drafts = []
            if len(edge_r):
                reference = costs.reference_rate_per_h(shift_earned[on_duty], online_s[on_duty])
                recent = (day.request_at_s <= now) & (day.request_at_s > now - FARE_WINDOW_S)
                candidates = [
                    Candidate(
                        trip_id=trip_ids[r],
                        driver_id=driver_ids[d],
                        distance_m=float(m),
                        idle_s=now - free_since[d],
                        since_last_trip=bool(had_trip[d]),
                        shift_earnings=float(shift_earned[d]),
                        shift_online_s=float(online_s[d]),
                        request_wait_s=now - day.request_at_s[r],
                        fare=float(fare[r]),
                    )
                    for r, d, m in zip(edge_r.tolist(), edge_d.tolist(), edge_m, strict=True)
                ]
                drafts = plan(
                    candidates,
                    dispatch,
                    reference_per_h=reference,
                    reference_fare=float(np.median(fare[recent])) if recent.any() else None,
                ).drafts
            taken = set()
            for draft in drafts:
                r, d = trip_index[draft.trip_id], driver_index[draft.driver_id]
                taken.add(r)
                etas.append(draft.pickup_eta_s)
                if draft.nearer_by_m is not None:
                    fairness_m.append(draft.nearer_by_m)
                busy = draft.pickup_eta_s + float(day.trip_s[r])
                busy_until[d] = free_since[d] = now + busy
                had_trip[d] = True
                engaged_s[d] += busy
                earnings[d] += earned_by_trip[r]
                pending[d] = earned_by_trip[r]
                commission += float(commission_by_trip[r])
                pos[d] = day.dropoff_xy[r]
            open_reqs = [r for r in open_reqs if r not in taken]
        now += batch_s
    return _figures(day, terms, earnings, engaged_s, etas, fairness_m, commission)


def _figures(
    day: Day,
    terms: Terms,
    earnings: FloatArray,
    engaged_s: FloatArray,
    etas: list[int],
    fairness_m: list[int],
    commission: float,
) -> DayFigures:
    online_h = (day.shift_end_s - day.shift_start_s) / 3600.0
    worked = online_h >= MIN_ONLINE_H
    floor = float(terms.pay.engaged_floor_per_hour)
    top_ups = np.maximum(floor * engaged_s / 3600.0 - earnings, 0.0)
    per_h = earnings[worked] / online_h[worked]
    pay_per_h = (earnings + top_ups)[worked] / online_h[worked]
    eta = np.asarray(etas, dtype=np.float64)

    def pct(values: FloatArray, q: float) -> float:
        return float(np.percentile(values, q)) if len(values) else 0.0

    return DayFigures(
        requests=len(day.request_at_s),
        served_share=len(etas) / max(len(day.request_at_s), 1),
        pickup_eta_mean_s=float(eta.mean()) if len(eta) else 0.0,
        pickup_eta_p90_s=pct(eta, 90),
        earnings_gini=gini(per_h),
        earnings_p10_per_h=pct(per_h, 10),
        earnings_median_per_h=pct(per_h, 50),
        pay_gini=gini(pay_per_h),
        pay_p10_per_h=pct(pay_per_h, 10),
        pay_median_per_h=pct(pay_per_h, 50),
        floor_top_ups=float(top_ups.sum()),
        commission=commission,
        fairness_share=len(fairness_m) / max(len(etas), 1),
        fairness_extra_max_m=float(max(fairness_m, default=0)),
    )


def _edges(
    pos: FloatArray,
    free: npt.NDArray[np.int64],
    pickup_xy: FloatArray,
    open_reqs: list[int],
    radius_m: float,
    k: int | None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray]:
    """Each open request's candidate drivers within `radius_m`: its `k` nearest free drivers
    (None: every one within it), as parallel arrays of request, driver and distance."""
    tree = cKDTree(pos[free])
    points = pickup_xy[open_reqs]
    rs: list[int] = []
    ds: list[int] = []
    ms: list[float] = []
    if k is None:
        for row, near in enumerate(tree.query_ball_point(points, radius_m)):
            for j in sorted(near):
                rs.append(open_reqs[row])
                ds.append(int(free[j]))
                ms.append(float(np.hypot(*(pos[free[j]] - points[row]))))
    else:
        kk = min(k, len(free))
        dist, idx = tree.query(points, k=kk, distance_upper_bound=radius_m)
        dist = np.asarray(dist).reshape(len(open_reqs), kk)
        idx = np.asarray(idx).reshape(len(open_reqs), kk)
        for row, r in enumerate(open_reqs):
            for m, j in zip(dist[row], idx[row], strict=True):
                if not math.isfinite(m):
                    break
                rs.append(r)
                ds.append(int(free[j]))
                ms.append(float(m))
    return np.asarray(rs, np.int64), np.asarray(ds, np.int64), np.asarray(ms, np.float64)


@dataclass(frozen=True)
class Comparison:
    """One figure over the days: its mean under each set of terms, the difference, the days'
    spread (the standard deviation of the figure from day to day under the terms in force) and
    whether the difference is within it."""

    figure: str
    current: float
    proposed: float
    difference: float
    spread: float
    within_spread: bool

    def to_wire(self) -> dict[str, object]:
        return asdict(self)


def compare(current: list[DayFigures], proposed: list[DayFigures]) -> list[Comparison]:
    """Every figure, the mean over the days under each set of terms (money summed over the days
    for the top-ups and the commission, as a week's totals)."""
    out = []
    for name in FIGURES:
        before = np.array([getattr(f, name) for f in current], dtype=np.float64)
        after = np.array([getattr(f, name) for f in proposed], dtype=np.float64)
        summed = name in ("floor_top_ups", "commission", "requests")
        b = float(before.sum() if summed else before.mean())
        a = float(after.sum() if summed else after.mean())
        spread = float(before.std(ddof=1)) if len(before) > 1 else 0.0
        if summed:
            spread *= math.sqrt(len(before))  # the spread of a sum of the days
        out.append(
            Comparison(
                figure=name,
                current=round(b, 4),
                proposed=round(a, 4),
                difference=round(a - b, 4),
                spread=round(spread, 4),
                within_spread=abs(a - b) <= spread,
            )
        )
    return out


Progress = Callable[[int, int], None]


def replay(
    days: list[Day],
    current: Terms,
    proposed: Terms,
    *,
    budget_s: float,
    progress: Progress | None = None,
) -> list[Comparison]:
    """Every day under the terms in force and the proposed ones, then the comparison; raises
    `BudgetExceeded` once `budget_s` seconds of work have passed. `progress(done, total)` is
    called after each day under each set of terms."""
    deadline = time.monotonic() + budget_s
    total = 2 * len(days)
    results: dict[str, list[DayFigures]] = {"current": [], "proposed": []}
    done = 0
    for day in days:
        for key, terms in (("current", current), ("proposed", proposed)):
            results[key].append(replay_day(day, terms, deadline=deadline))
            done += 1
            if progress is not None:
                progress(done, total)
    return compare(results["current"], results["proposed"])
