"""Engaged time: what the hourly floor and the patronage measure count (docs/pay.md, "What the
floor pays for"). It runs from accepting the offer to the trip's end, in three legs, each counted
up to what the trip's agreement calls plausible for it:

- the pickup (accepted to arrived, or to the end if the driver never arrived): the offer's
  `pickup_eta_s` with the overrun (`dispatch.overrun_percent`, `dispatch.overrun_s`);
- the wait at the pickup (arrived to the ride's start, or to the end): `dispatch.no_show_wait_s`,
  the free waiting time after which the rider is a no-show;
- the ride (started to completed): the quote's `duration_s` with the same overrun.

Time beyond a bound is time standing still (or a trip left open): it is not work the floor pays
for, so a driver cannot turn an idle trip of their own into hours of top-up. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bargaining.terms import DispatchTerms
from dispatch.trips.timeouts import overrun_s


@dataclass(frozen=True)
class Bounds:
    pickup_s: int
    wait_s: int
    ride_s: int


def bounds_of(terms: DispatchTerms, *, pickup_eta_s: int | None, quote_duration_s: int) -> Bounds:
    """The legs' bounds for a trip priced under `terms`. Without a known pickup estimate (no
    accepted offer on record) the pickup gets only the fixed overrun."""
    return Bounds(
        pickup_s=overrun_s(terms, pickup_eta_s or 0),
        wait_s=terms.no_show_wait_s,
        ride_s=overrun_s(terms, quote_duration_s),
    )


_NONE = timedelta(0)


def _leg(start: datetime | None, end: datetime | None, bound_s: int) -> timedelta:
    # In timedelta, exact to the microsecond: three float sums could lose a whole second.
    if start is None or end is None:
        return _NONE
    return min(max(_NONE, end - start), timedelta(seconds=bound_s))


def engaged_seconds(
    *,
    assigned_at: datetime,
    arrived_at: datetime | None,
    started_at: datetime | None,
    ended_at: datetime,
    bounds: Bounds,
) -> int:
    """The trip's engaged seconds: each leg's length, at most its bound, summed and then cut to
    whole seconds (as the unbounded time was)."""
    pickup_end = arrived_at or started_at or ended_at
    wait_end = started_at or ended_at
    total = (
        _leg(assigned_at, pickup_end, bounds.pickup_s)
        + _leg(arrived_at, wait_end, bounds.wait_s)
        + _leg(started_at, ended_at, bounds.ride_s)
    )
    return int(total.total_seconds())
