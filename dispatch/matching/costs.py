"""What a candidate pairing costs the co-op, in seconds, and how an offer explains itself.

Pure: no I/O. The cost of offering request r to driver d is the time the rider waits for the
pickup, less a credit for the driver (fairness among drivers) and a credit for the rider's wait
(fairness among riders):

    pickup_eta_s   = the travel-time model's estimate from the driver to the pickup
                     (`dispatch.matching.traveltime`: distance x detour / the learned speeds
                     of the cells on the way at this hour of the week); `pickup_eta_s` below
                     is the model's prior, before any trip: round(distance x 1.3 / 25 km/h)
    idle_credit    = fairness_weight * min(idle_s, IDLE_CREDIT_CAP_S)
    earnings_credit = earnings_credit_max_s * shortfall(d)
    earnings_credit = earnings_credit * min(fare_ratio(r), earnings_credit_fare_scale_max)
                                                  (when that term is in force)
    driver_credit  = min(idle_credit + earnings_credit, fairness_credit_max_s)
                     (with the penalty above the median: clipped to -half .. +half the bound)
    rider_credit   = min(request_wait_s, rider_wait_credit_max_s)
    cost           = round(pickup_eta_s - driver_credit - rider_credit)

`fairness_weight` is a term of the collective agreement (`dispatch.fairness_weight`): at 0.2,
ten minutes of waiting weigh as much as two minutes of driving to the pickup.

`shortfall(d)`, between 0 and 1, is how far the driver's earnings per online hour over their shift
so far fall below the reference (the median of the drivers online): 0 at or above it, 1 for a
driver who has earned nothing in a long shift. The rate is shrunk toward the reference as if the
driver had also worked `EARNINGS_PRIOR_H` hours at it, so a driver who just came on duty sits at
the reference (no credit, nothing to gain by starting a new shift), and a driver who has earned
little over hours gets most of `earnings_credit_max_s` (`dispatch.earnings_credit_max_s`; absent,
no earnings credit).

Two optional terms make the earnings credit fare-aware and signed (docs/fairness.md measured
them before they were terms): `earnings_credit_fare_scale_max` scales it by `fare_ratio(r)`, the
request's quote over the median quote of the region's last hour of requests, at most that many
times (so the dearest trips lean hardest toward the drivers furthest below the median), and
`earnings_penalty_above_median` lets `shortfall(d)` go down to -1 for a driver at twice the
reference or more: the mirror penalty, so cheap short trips lean toward those above it.

`fairness_credit_max_s` (`dispatch.fairness_credit_max_s`, optional: absent, the credit is bounded
only by the idle cap and the earnings credit's own maximum) is the most the driver's credit can be
worth, so the fairness part only reorders drivers whose pickup ETAs are within that many seconds of
each other: it never gives a request to a driver more than `fairness_credit_max_s` seconds further
away than another free candidate (`docs/fairness.md` measures what each bound costs riders and
buys drivers).

The rider's credit (`dispatch.rider_wait_credit_max_s`, optional: absent, none) is the same for
every candidate of a request, so it never changes which driver a request prefers; when drivers
are short it decides which requests are served: one second of waiting weighs one second of pickup,
so a request is not passed over by a stream of newer ones. Rounding is to the nearest second, ties
to even (Python's `round`, numpy's `rint`), in the scalar and the array forms alike, so both give
the same integers.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from dispatch.matching import traveltime

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# The travel-time model's prior (before it has learned from any trip): 25 km/h on roads 1.3
# times the straight line. The matcher itself asks the model (`Matcher.travel`).
PICKUP_SPEED_MPS: float = traveltime.PRIOR_SPEED_MPS
DETOUR_FACTOR: float = traveltime.DETOUR_FACTOR
# Time since the last trip stops earning credit after an hour, so that one very long wait cannot
# pull a driver across the city past many nearer ones.
IDLE_CREDIT_CAP_S: int = 3600
# A driver's shift earnings per online hour are shrunk toward the reference as if they had also
# worked this many hours at it: one lucky or unlucky first trip does not make a driver rich or
# poor, and a new shift starts at the reference (no credit).
EARNINGS_PRIOR_H: float = 1.0
# The reference rate is the median over the drivers online who have been so for at least this
# long (shorter shifts say little about a rate).
REFERENCE_MIN_ONLINE_S: float = 1800.0

_PRIOR = traveltime.TravelModel.prior()


def pickup_eta_s(distance_m: float) -> int:
    """Estimated seconds to drive to a pickup `distance_m` away as the crow flies, under the
    travel-time model's prior (what the model answers anywhere before any trip)."""
    if not math.isfinite(distance_m) or distance_m < 0:
        raise ValueError(f"a pickup distance must be finite and >= 0 metres (got {distance_m})")
    return int(pickup_eta_s_array(np.array([distance_m], dtype=np.float64))[0])


def edge_cost(
    *,
    pickup_eta_s: int,
    idle_s: float,
    fairness_weight: Decimal,
    fairness_credit_max_s: int | None = None,
    earnings_shortfall: float = 0.0,
    earnings_credit_max_s: int | None = None,
    request_wait_s: float = 0.0,
    rider_wait_credit_max_s: int | None = None,
    earnings_signed: bool = False,
    fare_ratio: float = 1.0,
    fare_scale_max: Decimal | None = None,
) -> int:
    """The cost in seconds of offering a request to a driver; lower is better, may be negative.
    `earnings_signed`: the shortfall may be negative (the penalty above the median rate);
    `fare_ratio`: the request's quote over the recent median, counted up to `fare_scale_max`."""
    rider_max = _checked_optional_s("rider wait credit", rider_wait_credit_max_s)
    low = -1.0 if earnings_signed else 0.0
    if not (math.isfinite(earnings_shortfall) and low <= earnings_shortfall <= 1.0):
        raise ValueError(f"an earnings shortfall is between {low:g} and 1 ({earnings_shortfall})")
    if not math.isfinite(request_wait_s):
        raise ValueError(f"a request's wait must be a finite number of seconds ({request_wait_s})")
    if pickup_eta_s < 0:
        raise ValueError(f"a pickup ETA must be >= 0 seconds (got {pickup_eta_s})")
    if not math.isfinite(idle_s):
        raise ValueError(f"idle time must be a finite number of seconds (got {idle_s})")
    # The array form's arithmetic on one edge: the scalar and the array forms cannot drift apart.
    driver_credit = float(
        driver_credit_array(
            idle_s=np.array([idle_s], dtype=np.float64),
            fairness_weight=fairness_weight,
            fairness_credit_max_s=fairness_credit_max_s,
            earnings_shortfall=np.array([earnings_shortfall], dtype=np.float64),
            earnings_credit_max_s=earnings_credit_max_s,
            earnings_signed=earnings_signed,
            fare_ratio=np.array([fare_ratio], dtype=np.float64),
            fare_scale_max=fare_scale_max,
        )[0]
    )
    rider_credit = min(max(request_wait_s, 0.0), rider_max)
    return round(pickup_eta_s - driver_credit - rider_credit)


def pickup_eta_s_array(distance_m: FloatArray) -> IntArray:
    """`pickup_eta_s` for an array of distances: the prior model's answer where the points are
    not known (the benchmarks' synthetic batches)."""
    distance_m = np.asarray(distance_m, dtype=np.float64)
    if distance_m.size and not (np.isfinite(distance_m).all() and distance_m.min() >= 0):
        raise ValueError("pickup distances must be finite and >= 0 metres")
    unknown = np.full(distance_m.shape, np.nan)
    return _PRIOR.pickup_eta_s_array(
        distance_m=distance_m,
        from_lat=unknown,
        from_lon=unknown,
        to_lat=unknown,
        to_lon=unknown,
        hour=0,
    )


def edge_cost_array(
    *,
    pickup_eta_s: IntArray,
    idle_s: FloatArray,
    fairness_weight: Decimal,
    fairness_credit_max_s: int | None = None,
    earnings_shortfall: FloatArray | None = None,
    earnings_credit_max_s: int | None = None,
    request_wait_s: FloatArray | None = None,
    rider_wait_credit_max_s: int | None = None,
    earnings_signed: bool = False,
    fare_ratio: FloatArray | None = None,
    fare_scale_max: Decimal | None = None,
) -> IntArray:
    """`edge_cost` for parallel arrays of ETAs, idle times, shortfalls, request waits and fare
    ratios (the last three default to zeros, zeros and ones)."""
    driver_credit = driver_credit_array(
        idle_s=idle_s,
        fairness_weight=fairness_weight,
        fairness_credit_max_s=fairness_credit_max_s,
        earnings_shortfall=earnings_shortfall,
        earnings_credit_max_s=earnings_credit_max_s,
        earnings_signed=earnings_signed,
        fare_ratio=fare_ratio,
        fare_scale_max=fare_scale_max,
    )
    rider_max = _checked_optional_s("rider wait credit", rider_wait_credit_max_s)
    eta = np.asarray(pickup_eta_s, dtype=np.int64)
    if eta.size and eta.min() < 0:
        raise ValueError("pickup ETAs must be >= 0 seconds")
    if eta.shape != driver_credit.shape:
        raise ValueError("pickup ETAs and idle times must be parallel arrays")
    cost = eta - driver_credit
    if request_wait_s is not None and rider_max > 0:
        wait = np.asarray(request_wait_s, dtype=np.float64)
        if wait.shape != eta.shape or (wait.size and not np.isfinite(wait).all()):
            raise ValueError("request waits must be finite seconds, one per edge")
        cost = cost - np.minimum(np.maximum(wait, 0.0), rider_max)
    return np.rint(cost).astype(np.int64)


def driver_credit_array(
    *,
    idle_s: FloatArray,
    fairness_weight: Decimal,
    fairness_credit_max_s: int | None = None,
    earnings_shortfall: FloatArray | None = None,
    earnings_credit_max_s: int | None = None,
    earnings_signed: bool = False,
    fare_ratio: FloatArray | None = None,
    fare_scale_max: Decimal | None = None,
) -> FloatArray:
    """The fairness credit of each edge's driver, in seconds, unrounded (the driver part of the
    cost: idle credit plus earnings credit, under the bound). `earnings_signed`: shortfalls go
    down to -1 (the penalty above the median rate) and a bound spans -half to +half of itself;
    `fare_ratio` (each edge's request's quote over the recent median) scales the earnings credit
    up to `fare_scale_max` times (None: not scaled)."""
    weight = _checked_weight(fairness_weight)
    credit_max = _checked_credit_max(fairness_credit_max_s)
    earnings_max = _checked_optional_s("earnings credit", earnings_credit_max_s)
    idle = np.asarray(idle_s, dtype=np.float64)
    if idle.size and not np.isfinite(idle).all():
        raise ValueError("idle times must be finite numbers of seconds")
    # A negative idle time can only be clock skew between workers: it earns nothing.
    credit = weight * np.clip(idle, 0.0, float(IDLE_CREDIT_CAP_S))
    if earnings_shortfall is not None and earnings_max > 0:
        shortfall = np.asarray(earnings_shortfall, dtype=np.float64)
        if shortfall.shape != idle.shape:
            raise ValueError("earnings shortfalls must be one per edge")
        low = -1.0 if earnings_signed else 0.0
        if shortfall.size and not (
            np.isfinite(shortfall).all() and shortfall.min() >= low and shortfall.max() <= 1
        ):
            raise ValueError(f"earnings shortfalls are between {low:g} and 1")
        earnings_part = earnings_max * shortfall
        if fare_scale_max is not None and fare_ratio is not None:
            earnings_part = earnings_part * _scaled_fares(fare_ratio, idle.shape, fare_scale_max)
        credit = credit + earnings_part
    if earnings_signed and math.isfinite(credit_max):
        # A penalty is a credit below zero: the bound is the span between the most favoured and
        # the most penalised driver, so it still caps how far fairness can reorder them.
        half = credit_max / 2
        signed_result: FloatArray = np.clip(credit, -half, credit_max - half)
        return signed_result
    result: FloatArray = np.minimum(credit, credit_max)
    return result


def _scaled_fares(
    fare_ratio: FloatArray, shape: tuple[int, ...], fare_scale_max: Decimal
) -> FloatArray:
    if not fare_scale_max.is_finite() or fare_scale_max < 0:
        raise ValueError(f"the fare scaling's maximum must be >= 0 (got {fare_scale_max})")
    ratio = np.asarray(fare_ratio, dtype=np.float64)
    if ratio.shape != shape:
        raise ValueError("fare ratios must be one per edge")
    if ratio.size and not (np.isfinite(ratio).all() and ratio.min() >= 0):
        raise ValueError("fare ratios must be finite and >= 0")
    scaled: FloatArray = np.minimum(ratio, float(fare_scale_max))
    return scaled


def fare_ratio_array(fares: FloatArray, reference_fare: float | None) -> FloatArray:
    """Each request's quote over the reference (the median quote of the last hour's requests);
    1 where the quote or the reference is unknown, so the credit is then unscaled."""
    fare = np.asarray(fares, dtype=np.float64)
    if reference_fare is None or not math.isfinite(reference_fare) or reference_fare <= 0:
        return np.ones_like(fare)
    known = np.isfinite(fare) & (fare >= 0)
    ratio: FloatArray = np.where(known, np.where(known, fare, 0.0) / reference_fare, 1.0)
    return ratio


def shift_rate_per_h(earnings: FloatArray, online_s: FloatArray) -> FloatArray:
    """Earnings per online hour over the shift so far, unshrunk (0 for no online time)."""
    earned = np.asarray(earnings, dtype=np.float64)
    hours = np.asarray(online_s, dtype=np.float64) / 3600.0
    rate: FloatArray = np.divide(earned, hours, out=np.zeros_like(earned), where=hours > 0)
    return rate


def reference_rate_per_h(earnings: FloatArray, online_s: FloatArray) -> float | None:
    """The median earnings per online hour of the drivers online for at least
    `REFERENCE_MIN_ONLINE_S` (None when there are none: no earnings credit then)."""
    online = np.asarray(online_s, dtype=np.float64)
    settled = online >= REFERENCE_MIN_ONLINE_S
    if not settled.any():
        return None
    return float(np.median(shift_rate_per_h(np.asarray(earnings)[settled], online[settled])))


def earnings_shortfall_array(
    earnings: FloatArray,
    online_s: FloatArray,
    reference_per_h: float | None,
    *,
    signed: bool = False,
) -> FloatArray:
    """How far each driver's shrunk shift rate falls below the reference, as a share of it:
    (reference - rate) / reference, between 0 and 1 (0 when there is no reference); `signed`,
    between -1 and 1 (a rate above the reference gives a negative shortfall: the penalty)."""
    earned = np.maximum(np.asarray(earnings, dtype=np.float64), 0.0)
    online = np.maximum(np.asarray(online_s, dtype=np.float64), 0.0)
    if reference_per_h is None or not math.isfinite(reference_per_h) or reference_per_h <= 0:
        return np.zeros_like(earned)
    if earned.size and not (np.isfinite(earned).all() and np.isfinite(online).all()):
        raise ValueError("shift earnings and online times must be finite")
    hours = online / 3600.0
    shrunk = (earned + reference_per_h * EARNINGS_PRIOR_H) / (hours + EARNINGS_PRIOR_H)
    low = -1.0 if signed else 0.0
    shortfall: FloatArray = np.clip((reference_per_h - shrunk) / reference_per_h, low, 1.0)
    return shortfall


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


def explain_shift(*, earnings: float, online_s: float, reference_per_h: float) -> str:
    """The driver's shift so far against the reference, in words, e.g. "this shift you earned
    20.00 in 3 h online, below the median of 23.33 an hour"."""
    return (
        f"this shift you earned {earnings:.2f} in {_span(online_s)} online, below the median of"
        f" {reference_per_h:.2f} an hour"
    )


def explain_fairness(
    *,
    offered_distance_m: float,
    nearer_distance_m: float,
    idle_s: tuple[float, float] | None,
    shift: tuple[tuple[float, float], tuple[float, float]] | None,
) -> str:
    """Why fairness gave the offer to a farther driver, with the figures that decided it:
    `idle_s` is (the nearer driver's wait, yours), `shift` is ((their earnings, their online
    seconds), (yours)); each is given when that part of the credit is in force."""
    gap = max(offered_distance_m - nearer_distance_m, 0.0)
    parts = []
    if shift is not None:
        (their_earned, their_online), (your_earned, your_online) = shift
        parts.append(
            f"they had earned {their_earned:.2f} in {_span(their_online)} online this shift,"
            f" you {your_earned:.2f} in {_span(your_online)}"
        )
    if idle_s is not None:
        theirs, yours = idle_s
        parts.append(f"they had waited {_span(theirs)}, you {_span(yours)}")
    nearer = "a driver nearer" if gap < 100 else f"a driver {_distance(gap)} nearer"
    reasons = "; ".join(parts) if parts else "the agreement's fairness terms"
    return f"fairness gave you this trip over {nearer}: {reasons}"


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


def _checked_optional_s(what: str, seconds: int | None) -> float:
    if seconds is None:
        return 0.0
    if seconds < 0:
        raise ValueError(f"the most a {what} is worth must be >= 0 s (got {seconds})")
    return float(seconds)


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


def _span(seconds: float) -> str:
    return "under a minute" if seconds < 60 else _duration(seconds)


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h" if minutes == 0 else f"{hours} h {minutes} min"
