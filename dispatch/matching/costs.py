"""What a candidate pairing costs the co-op, in seconds, and how an offer explains itself.

Pure: no I/O. The cost of offering request r to driver d is the time the rider waits for the
pickup, less a credit for the time the driver has waited since their last trip:

    pickup_eta_s = round(pickup_distance_m * DETOUR_FACTOR / PICKUP_SPEED_MPS)
    credit       = min(fairness_weight * min(idle_s, IDLE_CREDIT_CAP_S), fairness_credit_max_s)
    cost         = round(pickup_eta_s - credit)

`fairness_weight` is a term of the collective agreement (`dispatch.fairness_weight`): at 0.2,
ten minutes of waiting weigh as much as two minutes of driving to the pickup.
`fairness_credit_max_s` (`dispatch.fairness_credit_max_s`, optional: absent, the credit is bounded
only by the idle cap) is the most the credit can be worth, so the fairness part only reorders
drivers whose pickup ETAs are within that many seconds of each other: it never gives a request to a
driver more than `fairness_credit_max_s` seconds further away than another free candidate
(`docs/fairness.md` measures what each bound costs riders and buys drivers). Rounding is to the
nearest second, ties to even (Python's `round`, numpy's `rint`), in the scalar and the array forms
alike, so both give the same integers.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Assumed average city driving speed on the way to a pickup: 8.3 m/s is 30 km/h.
PICKUP_SPEED_MPS: float = 8.3
# Road distance over straight-line distance; about 1.3 on a city street grid.
DETOUR_FACTOR: float = 1.3
# Time since the last trip stops earning credit after an hour, so that one very long wait cannot
# pull a driver across the city past many nearer ones.
IDLE_CREDIT_CAP_S: int = 3600


def pickup_eta_s(distance_m: float) -> int:
    """Estimated seconds to drive to a pickup `distance_m` away as the crow flies."""
    if not math.isfinite(distance_m) or distance_m < 0:
        raise ValueError(f"a pickup distance must be finite and >= 0 metres (got {distance_m})")
    return round(distance_m * DETOUR_FACTOR / PICKUP_SPEED_MPS)


def edge_cost(
    *,
    pickup_eta_s: int,
    idle_s: float,
    fairness_weight: Decimal,
    fairness_credit_max_s: int | None = None,
) -> int:
    """The cost in seconds of offering a request to a driver; lower is better, may be negative."""
    weight = _checked_weight(fairness_weight)
    credit_max = _checked_credit_max(fairness_credit_max_s)
    if not math.isfinite(idle_s):
        raise ValueError(f"idle time must be a finite number of seconds (got {idle_s})")
    if pickup_eta_s < 0:
        raise ValueError(f"a pickup ETA must be >= 0 seconds (got {pickup_eta_s})")
    return round(pickup_eta_s - min(weight * _credited_idle_s(idle_s), credit_max))


def pickup_eta_s_array(distance_m: FloatArray) -> IntArray:
    """`pickup_eta_s` for an array of distances (the matcher's whole batch at once)."""
    distance_m = np.asarray(distance_m, dtype=np.float64)
    if distance_m.size and not (np.isfinite(distance_m).all() and distance_m.min() >= 0):
        raise ValueError("pickup distances must be finite and >= 0 metres")
    return np.rint(distance_m * DETOUR_FACTOR / PICKUP_SPEED_MPS).astype(np.int64)


def edge_cost_array(
    *,
    pickup_eta_s: IntArray,
    idle_s: FloatArray,
    fairness_weight: Decimal,
    fairness_credit_max_s: int | None = None,
) -> IntArray:
    """`edge_cost` for parallel arrays of ETAs and idle times."""
    weight = _checked_weight(fairness_weight)
    credit_max = _checked_credit_max(fairness_credit_max_s)
    eta = np.asarray(pickup_eta_s, dtype=np.int64)
    idle = np.asarray(idle_s, dtype=np.float64)
    if idle.size and not np.isfinite(idle).all():
        raise ValueError("idle times must be finite numbers of seconds")
    if eta.size and eta.min() < 0:
        raise ValueError("pickup ETAs must be >= 0 seconds")
    credited = np.clip(idle, 0.0, float(IDLE_CREDIT_CAP_S))
    return np.rint(eta - np.minimum(weight * credited, credit_max)).astype(np.int64)


def explain(*, pickup_distance_m: float, pickup_eta_s: int, idle_s: float | None) -> str:
    """The offer's `why` in plain words, e.g. "0.3 km away, about 1 min; 14 min since your last
    trip"."""
    if not math.isfinite(pickup_distance_m) or pickup_distance_m < 0:
        raise ValueError(
            f"a pickup distance must be finite and >= 0 metres (got {pickup_distance_m})"
        )
    if pickup_eta_s < 0:
        raise ValueError(f"a pickup ETA must be >= 0 seconds (got {pickup_eta_s})")
    if idle_s is not None and not math.isfinite(idle_s):
        raise ValueError(f"idle time must be a finite number of seconds (got {idle_s})")
    if idle_s is None:
        waited = "your first trip today"
    elif idle_s < 60:
        waited = "your last trip ended under a minute ago"
    else:
        waited = f"{_duration(idle_s)} since your last trip"
    return f"{_distance(pickup_distance_m)} away, {_eta(pickup_eta_s)}; {waited}"


def _checked_weight(fairness_weight: Decimal) -> float:
    if not fairness_weight.is_finite() or fairness_weight < 0:
        raise ValueError(f"the fairness weight must be a number >= 0 (got {fairness_weight})")
    return float(fairness_weight)


def _checked_credit_max(fairness_credit_max_s: int | None) -> float:
    if fairness_credit_max_s is None:
        return math.inf
    if fairness_credit_max_s < 0:
        raise ValueError(
            f"the most a fairness credit is worth must be >= 0 s (got {fairness_credit_max_s})"
        )
    return float(fairness_credit_max_s)


def _credited_idle_s(idle_s: float) -> float:
    # A negative idle time can only be clock skew between workers: it earns nothing.
    return min(max(idle_s, 0.0), float(IDLE_CREDIT_CAP_S))


def _distance(distance_m: float) -> str:
    if distance_m < 100:
        return "under 100 m"
    if distance_m < 9_950:
        return f"{distance_m / 1000:.1f} km"
    return f"{round(distance_m / 1000)} km"


def _eta(eta_s: int) -> str:
    if eta_s < 60:
        return "under a minute"
    return f"about {_duration(eta_s)}"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h" if minutes == 0 else f"{hours} h {minutes} min"
