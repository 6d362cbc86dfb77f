"""The pay side of the fairness benchmark (docs/fairness.md, "The pay side"): what drivers are paid
per online hour once the hourly floor has topped their day up, and what the floor costs the co-op.

Pure post-processing of one replay: dispatch decides who drove which trip; each trip is priced
under the agreement (`bargaining.fares.price_trip`: the driver's part and the co-op's commission),
and each driver's engaged time (the pickup and the ride) is topped up to the floor by the pay
rule itself (`pay.arithmetic.floor_due` and `top_up`), for any number of floors, without
replaying dispatch again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from bargaining.fares import STANDARD, price_trip
from bargaining.terms import Terms
from loadtests.fairness_sim import gini
from pay import arithmetic

FloatArray = npt.NDArray[np.float64]
ZERO = Decimal("0.00")
# The benchmark's rule for a rate per online hour: shorter shifts say nothing about one.
MIN_ONLINE_H = 0.5


@dataclass(frozen=True)
class Priced:
    """Each request's trip priced under the agreement: the driver's part and the commission."""

    driver_part: tuple[Decimal, ...]
    commission: tuple[Decimal, ...]


def price_requests(terms: Terms, *, distance_m: FloatArray, duration_s: FloatArray) -> Priced:
    """Every request's trip as the agreement would charge it (metered distance and duration)."""
    parts, cuts = [], []
    for metres, seconds in zip(distance_m.tolist(), duration_s.tolist(), strict=True):
        fare = price_trip(
            terms,
            agreement_version=0,
            service_class=STANDARD,
            distance_m=max(int(metres), 0),
            duration_s=max(int(seconds), 0),
        )
        parts.append(fare.driver_earnings)
        cuts.append(fare.coop_commission)
    return Priced(tuple(parts), tuple(cuts))


@dataclass(frozen=True)
class DriverDays:
    """What each driver's day added up to: the drivers' part of their fares, their engaged
    seconds and their online hours; and the commission the co-op collected on the day."""

    earnings: tuple[Decimal, ...]
    engaged_s: tuple[int, ...]
    online_h: tuple[float, ...]
    commission: Decimal


def driver_days(
    priced: Priced,
    *,
    driver_of: npt.NDArray[np.int64],
    pickup_eta_s: FloatArray,
    trip_s: FloatArray,
    online_h: FloatArray,
) -> DriverDays:
    """Each driver's day from who served each request (`driver_of`, -1: unserved): engaged time
    runs from the offer to the trip's end (the pickup ETA, then the ride; the simulation has no
    wait at the pickup)."""
    n_drv = len(online_h)
    earned = [ZERO] * n_drv
    engaged = [0] * n_drv
    commission = ZERO
    for r in np.flatnonzero(driver_of >= 0).tolist():
        d = int(driver_of[r])
        earned[d] += priced.driver_part[r]
        engaged[d] += int(round(float(pickup_eta_s[r]) + float(trip_s[r])))
        commission += priced.commission[r]
    return DriverDays(tuple(earned), tuple(engaged), tuple(float(h) for h in online_h), commission)


@dataclass(frozen=True)
class PayFigures:
    """Pay per online hour after the floor's top-ups, for one floor (money in the agreement's
    currency; rates of the drivers online `MIN_ONLINE_H` or more, top-ups of every driver)."""

    floor_per_h: Decimal
    gini: float
    p10_per_h: float
    median_per_h: float
    top_ups: Decimal
    topped_up_share: float  # of the drivers counted, those the floor topped up
    commission: Decimal


def top_ups(days: DriverDays, floor_per_h: Decimal, *, per: str = "engaged") -> list[Decimal]:
    """Each driver's top-up under the pay rule: the floor per engaged hour (the agreement's),
    or, with `per="online"`, the same rule applied to online hours (a diagnostic the agreement
    does not have: a floor on time online, waiting included)."""
    out = []
    for earned, engaged_s, online_h in zip(
        days.earnings, days.engaged_s, days.online_h, strict=True
    ):
        counted_s = engaged_s if per == "engaged" else int(round(online_h * 3600))
        due = arithmetic.floor_due(counted_s, floor_per_h)
        out.append(arithmetic.top_up(floor=due, earnings=earned, cancellation_fees=ZERO))
    return out


def pay_figures(days: DriverDays, floor_per_h: Decimal, *, per: str = "engaged") -> PayFigures:
    """The figures of pay per online hour once each driver's day is topped up to the floor."""
    extra = top_ups(days, floor_per_h, per=per)
    online_h = np.asarray(days.online_h, dtype=np.float64)
    counted = online_h > MIN_ONLINE_H
    pay = np.array([float(e + t) for e, t in zip(days.earnings, extra, strict=True)])
    per_h = pay[counted] / online_h[counted]
    topped = np.array([t > 0 for t in extra], dtype=bool)[counted]
    return PayFigures(
        floor_per_h=floor_per_h,
        gini=gini(per_h),
        p10_per_h=float(np.percentile(per_h, 10)) if len(per_h) else 0.0,
        median_per_h=float(np.median(per_h)) if len(per_h) else 0.0,
        top_ups=sum(extra, ZERO),
        topped_up_share=float(topped.mean()) if len(topped) else 0.0,
        commission=days.commission,
    )


def every_floor(
    days: DriverDays, floors: Sequence[Decimal], *, per: str = "engaged"
) -> list[PayFigures]:
    return [pay_figures(days, floor, per=per) for floor in floors]
