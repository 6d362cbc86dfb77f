"""The riders' side of the fairness benchmark (docs/fairness.md, "Which riders each policy
serves"): two replays of the same day compared request by request, to say which requests one
policy serves and the other does not, and what stood in their way.

Pure: reads two `Trace`s of the same `Day`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loadtests.fairness_sim import Trace

# Rings around the centre of the month's pickups (midtown Manhattan), in km.
ZONES_KM = ((0.0, 3.0), (3.0, 6.0), (6.0, 10.0), (10.0, float("inf")))


@dataclass(frozen=True)
class Split:
    """The day's requests by who serves them: both, only the first policy, only the second,
    neither; and, of those only the second serves, the share the first left without a free
    driver within the radius at any batch of their wait (none in reach), against those it had
    drivers in reach for but gave them to other requests."""

    requests: int
    both: int
    only_first: int
    only_second: int
    neither: int
    only_second_none_in_reach: float
    only_first_none_in_reach: float
    unserved_first_none_in_reach: float
    unserved_second_none_in_reach: float
    only_second_pickup_m_median: float
    served_second_pickup_m_median: float
    # The rides themselves: what decides how soon a driver is free again when riders queue.
    only_second_trip_s_median: float
    only_first_trip_s_median: float
    served_first_trip_s_mean: float
    served_second_trip_s_mean: float


def split(first: Trace, second: Trace, trip_s: npt.NDArray[np.float64]) -> Split:
    """The requests of one day under two policies (`trip_s`: each request's ride)."""
    a, b = first.driver_of >= 0, second.driver_of >= 0
    only_a, only_b = a & ~b, b & ~a

    def none_in_reach(trace: Trace, which: npt.NDArray[np.bool_]) -> float:
        return float((trace.most_in_reach[which] == 0).mean()) if which.any() else 0.0

    def median(values: npt.NDArray[np.float64]) -> float:
        return float(np.median(values)) if len(values) else 0.0

    return Split(
        requests=len(a),
        both=int((a & b).sum()),
        only_first=int(only_a.sum()),
        only_second=int(only_b.sum()),
        neither=int((~a & ~b).sum()),
        only_second_none_in_reach=none_in_reach(first, only_b),
        only_first_none_in_reach=none_in_reach(second, only_a),
        unserved_first_none_in_reach=none_in_reach(first, ~a),
        unserved_second_none_in_reach=none_in_reach(second, ~b),
        only_second_pickup_m_median=median(second.pickup_m[only_b]),
        served_second_pickup_m_median=median(second.pickup_m[b]),
        only_second_trip_s_median=median(trip_s[only_b]),
        only_first_trip_s_median=median(trip_s[only_a]),
        served_first_trip_s_mean=float(trip_s[a].mean()) if a.any() else 0.0,
        served_second_trip_s_mean=float(trip_s[b].mean()) if b.any() else 0.0,
    )


def served_by_zone(
    trace: Trace, request_xy: npt.NDArray[np.float64]
) -> list[tuple[str, int, float]]:
    """Per ring around the centre: its label, its requests and the share served."""
    km = np.hypot(request_xy[:, 0], request_xy[:, 1]) / 1000.0
    out = []
    for low, high in ZONES_KM:
        inside = (km >= low) & (km < high)
        label = f"{low:g}–{high:g} km" if np.isfinite(high) else f"{low:g} km or more"
        share = float((trace.driver_of[inside] >= 0).mean()) if inside.any() else 0.0
        out.append((label, int(inside.sum()), share))
    return out


def served_by_hour(
    trace: Trace, request_at: npt.NDArray[np.float64], start_hour: int
) -> list[tuple[str, int, float]]:
    """Per hour of the day: its label, its requests and the share served."""
    hour = (request_at // 3600).astype(np.int64)
    out = []
    for h in range(int(hour.max(initial=-1)) + 1):
        inside = hour == h
        share = float((trace.driver_of[inside] >= 0).mean()) if inside.any() else 0.0
        out.append((f"{start_hour + h}:00", int(inside.sum()), share))
    return out


def in_reach_served(
    trace: Trace, buckets: tuple[int, ...] = (0, 1, 2, 4, 8)
) -> list[tuple[str, int, float]]:
    """Requests by the most free drivers within the radius at any batch of their wait: the
    bucket's label, its requests and the share served."""
    out = []
    edges = [*buckets, 10**9]
    for low, high in zip(edges, edges[1:], strict=False):
        inside = (trace.most_in_reach >= low) & (trace.most_in_reach < high)
        label = (
            str(low)
            if high == low + 1
            else (f"{low}–{high - 1}" if high < 10**9 else f"{low} or more")
        )
        share = float((trace.driver_of[inside] >= 0).mean()) if inside.any() else 0.0
        out.append((label, int(inside.sum()), share))
    return out
