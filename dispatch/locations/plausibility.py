"""Is a driver's new position believable after the last one? (pure: no I/O, no clock)

A position that implies a move faster than the agreement's `dispatch.max_plausible_speed_kmh`
since the last position believed is not believed: it is not metered and does not move the
driver on the map. The speed is measured over the server's receipt times, which a client cannot
forge, with small allowances for the jitter of a phone's GPS fix and of the network.

The allowances hold per stretch of time, not per report: a new position must be believable
after each position believed in the last `WINDOW_S`, with the way driven since (the sum of the
moves believed) in place of the straight line. Otherwise reports a tenth of a second apart
would each earn the whole allowance, and 60 m hops standing still would pass as 650 m/s.

One wrong position must not lock a driver out either (a first fix from cell towers can be
kilometres off, and every later true position would then look like a jump). When the rejected
positions agree with each other (a stretch of their own, by the same rule) for
`REANCHOR_AFTER_S` and at least `REANCHOR_MIN_FIXES` reports, the driver is believed to be
there: the newest of them becomes the reference, as a new start. The jump itself is never
metered, so moving the reference this way gains a cheating meter nothing.
"""

from __future__ import annotations

import enum
from collections import deque
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
# How far back a new position is checked against the way driven (see the module's docstring):
# over this long, the allowances add at most (25 m + 1 s at the speed limit) / 10 s, 6 m/s at
# 130 km/h, to what the speed allows; the meter's cap takes even that back.
WINDOW_S = 10.0
# Positions kept for the window (one per 100 ms at most is let in: 10 s of them).
WINDOW_MAX_FIXES = 100


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


class Stretch:
    """Positions that follow one another believably, the last `WINDOW_S` of them, each with
    the way driven to it (metres, summed from the stretch's start)."""

    __slots__ = ("_fixes",)

    def __init__(self, start: Fix) -> None:
        self._fixes: deque[tuple[Fix, float]] = deque([(start, 0.0)], maxlen=WINDOW_MAX_FIXES)

    @property
    def last(self) -> Fix:
        return self._fixes[-1][0]

    def admits(self, fix: Fix, *, max_speed_mps: float) -> bool:
        """Whether `fix` can follow the last position, and the way from each earlier one in
        the window can be driven in the time since it, at `max_speed_mps` (plus the GPS and
        timing allowances, once)."""
        last, way_m = self._fixes[-1]
        way_m += haversine_m(last.lat, last.lon, fix.lat, fix.lon)
        for before, before_way_m in self._fixes:
            elapsed_s = max(0.0, (fix.at - before.at).total_seconds()) + TIMING_ALLOWANCE_S
            if way_m - before_way_m > max_speed_mps * elapsed_s + GPS_ALLOWANCE_M:
                return False
        return True

    def extend(self, fix: Fix) -> None:
        last, way_m = self._fixes[-1]
        self._fixes.append((fix, way_m + haversine_m(last.lat, last.lon, fix.lat, fix.lon)))
        while (fix.at - self._fixes[0][0].at).total_seconds() > WINDOW_S:
            self._fixes.popleft()


class Track:
    """The positions believed of one driver, one report at a time."""

    __slots__ = ("_rejected", "_rejected_since", "_run", "_stretch")

    def __init__(self, reference: Fix | None = None) -> None:
        self._stretch = None if reference is None else Stretch(reference)
        # The run of rejected positions that agree with each other, and how many they are.
        self._run: Stretch | None = None
        self._rejected = 0
        self._rejected_since: datetime | None = None

    @property
    def reference(self) -> Fix | None:
        """The last position believed."""
        return None if self._stretch is None else self._stretch.last

    def judge(self, fix: Fix, *, max_speed_mps: float) -> Verdict:
        if self._stretch is None:
            self._stretch = Stretch(fix)
            return Verdict.anchored
        if self._stretch.admits(fix, max_speed_mps=max_speed_mps):
            self._stretch.extend(fix)
            self._run, self._rejected = None, 0
            return Verdict.moved
        run = self._run
        if run is None or not run.admits(fix, max_speed_mps=max_speed_mps):
            # The first rejection, or one that disagrees with the run: a new run starts here.
            self._run, self._rejected, self._rejected_since = Stretch(fix), 1, fix.at
            return Verdict.implausible
        run.extend(fix)
        self._rejected += 1
        assert self._rejected_since is not None
        if (
            self._rejected >= REANCHOR_MIN_FIXES
            and (fix.at - self._rejected_since).total_seconds() >= REANCHOR_AFTER_S
        ):
            self._stretch = Stretch(fix)
            self._run, self._rejected = None, 0
            return Verdict.anchored
        return Verdict.implausible
