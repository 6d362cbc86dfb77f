"""Is a driver's new position believable after the last one? (pure: no I/O, no clock)

A position that implies a move faster than the agreement's `dispatch.max_plausible_speed_kmh`
since the last position believed is not believed: it is not metered and does not move the
driver on the map. The speed is measured over the server's receipt times, which a client cannot
forge, with small allowances for the jitter of a phone's GPS fix and of the network.

One wrong position must not lock a driver out either (a first fix from cell towers can be
kilometres off, and every later true position would then look like a jump). When the rejected
positions agree with each other (each believable after the one before it) for
`REANCHOR_AFTER_S` and at least `REANCHOR_MIN_FIXES` reports, the driver is believed to be
there: the newest of them becomes the reference, as a new start. The jump itself is never
metered, so moving the reference this way gains a cheating meter nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from coop.geo import haversine_m

# A phone's fix wanders by a few metres even when it stands still; twice the usual accuracy of a
# city fix is allowed on top of the distance the speed allows.
GPS_ALLOWANCE_M = 25.0
# Reports are timed when the server handles them: a network or a busy server can bunch two of
# them closer together than they were sent. This much time is allowed on top of the measured
# one (at 130 km/h, 36 m more). What a cheat could gain from both allowances is bounded by the
# meter's cap: never more distance than the trip's duration allows at the speed limit.
TIMING_ALLOWANCE_S = 1.0
# How long, and over how many reports, rejected positions must agree before they are believed.
REANCHOR_AFTER_S = 10.0
REANCHOR_MIN_FIXES = 3


class Verdict(enum.StrEnum):
    moved = "moved"  # believable after the reference: metered from it
    anchored = "anchored"  # believed as a new start: not metered from anything before it
    implausible = "implausible"  # not believed


@dataclass(frozen=True)
class Fix:
    lat: float
    lon: float
    at: datetime


def kmh_to_mps(kmh: float) -> float:
    return kmh / 3.6


def believable(before: Fix, after: Fix, *, max_speed_mps: float) -> bool:
    """Whether `after` can follow `before` at no more than `max_speed_mps` (plus the GPS and
    timing allowances)."""
    elapsed_s = max(0.0, (after.at - before.at).total_seconds()) + TIMING_ALLOWANCE_S
    moved_m = haversine_m(before.lat, before.lon, after.lat, after.lon)
    return moved_m <= max_speed_mps * elapsed_s + GPS_ALLOWANCE_M


class Track:
    """The positions believed of one driver, one report at a time."""

    __slots__ = ("_rejected", "_rejected_first", "_rejected_last", "reference")

    def __init__(self, reference: Fix | None = None) -> None:
        self.reference = reference
        # The run of rejected positions that agree with each other: its first, last and length.
        self._rejected_first: Fix | None = None
        self._rejected_last: Fix | None = None
        self._rejected = 0

    def judge(self, fix: Fix, *, max_speed_mps: float) -> Verdict:
        if self.reference is None:
            self.reference = fix
            return Verdict.anchored
        if believable(self.reference, fix, max_speed_mps=max_speed_mps):
            self.reference = fix
            self._rejected_first = self._rejected_last = None
            self._rejected = 0
            return Verdict.moved
        last = self._rejected_last
        if last is None or not believable(last, fix, max_speed_mps=max_speed_mps):
            # The first rejection, or one that disagrees with the run: a new run starts here.
            self._rejected_first, self._rejected = fix, 0
        self._rejected_last = fix
        self._rejected += 1
        assert self._rejected_first is not None
        if (
            self._rejected >= REANCHOR_MIN_FIXES
            and (fix.at - self._rejected_first.at).total_seconds() >= REANCHOR_AFTER_S
        ):
            self.reference = fix
            self._rejected_first = self._rejected_last = None
            self._rejected = 0
            return Verdict.anchored
        return Verdict.implausible
