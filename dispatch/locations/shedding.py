"""Backpressure on location reports: how often each driver's reports are taken while the worker
sheds (`ShedGap`), how long a report waited before it was read (`QueueClock`, `stamped_at`), and
the verdict on a frame before it is read (`Take`). Pure: the caller says what it saw and when;
`dispatch.locations.ingest.LocationIngest` measures and asks.
"""

from __future__ import annotations

import enum
import math
import re
from datetime import datetime

# Flushes are behind when one runs longer than this (or none ended for four times it while
# reports wait).
CONGESTED_AFTER_S = 1.5
# `/metrics` gives the slowest flush of this window (coop_location_flush_slowest_seconds).
FLUSH_WINDOW_S = 5.0
# While they are, a driver's location reports are taken at most this often (`ShedGap`): the
# rest are shed, and counted. Below MIN_SHED_GAP_S, shedding stops.
MIN_SHED_GAP_S = 1.0
MAX_SHED_GAP_S = 8.0
# When shedding starts, the gap asked is the drivers' mean report interval as the worker read
# them lately (the frames read since the last RATE_WINDOW_S began, or over that whole window
# when it began under RATE_MIN_S ago) divided by ONSET_SHARE. A worker that reads behind reads
# about as fast as it can, so every socket is asked for three quarters of its share of what the
# worker managed (the backlog the overload left drains meanwhile), whatever its app's own pace
# (every 4 s, or every second on a trip); a worker whose flushes alone fall behind reads what
# the apps send, and the widening below takes over.
ONSET_SHARE = 0.75
RATE_WINDOW_S = 2.0
RATE_MIN_S = 0.5
# Then the gap follows the worker's capacity in small steps, since twice its sustained rate
# and its sustained rate are only a step of 2 apart, and a flush's time grows steeply as the
# rate nears what the worker can write:
# - congestion still there (a flush over CONGESTED_AFTER_S, or reading behind) widens the gap
#   by SHED_WIDEN, at most every SHED_WIDEN_AFTER_S (the sockets need a moment to hear the ask
#   and heed it, and the frames sent before it to drain); the gap it widened from is
#   remembered for SHED_MEMORY_S, and the gap does not narrow back within SHED_MEMORY_MARGIN of
#   it meanwhile: that rate overloaded the worker a moment ago;
# - it narrows only after SHED_HOLD_S since a widening, then at most every SHED_RELAX_S (the
#   sockets were asked to report less often for 10 s, docs/protocol.md, `overloaded`), by how
#   busy the worker was over the last FLUSH_WINDOW_S: the share of it the process used the
#   CPU (a worker is one event loop: near one whole core it reads and flushes as fast as it
#   can), or the share its flushes ran, whichever is higher: by the first step of
#   SHED_NARROWING whose share it is under (the idler, the larger), not at all above the last
#   (near capacity);
# - shedding stops when the gap narrows below MIN_SHED_GAP_S. When congestion comes back
#   within SHED_MEMORY_S of that, the apps' own rate is still too much: shedding starts again
#   at the gap it stopped from, widened once, and the next stop waits twice as long as the
#   last (from SHED_MEMORY_S, up to SHED_STOP_HOLD_MAX_S), so the worker is not overloaded
#   again every half minute by the full rate coming back.
SHED_WIDEN = 1.2
SHED_WIDEN_AFTER_S = 5.0
SHED_MEMORY_S = 30.0
SHED_MEMORY_MARGIN = 1.1
SHED_HOLD_S = 10.0
SHED_RELAX_S = 5.0
SHED_NARROWING = ((0.5, 1.5), (0.75, 1.25), (0.9, 1.1))  # (busy under, the gap divided by)
SHED_STOP_HOLD_MAX_S = 300.0
# Each socket is asked for the gap times its own spread, drawn once between 1 - GAP_SPREAD and
# 1 + GAP_SPREAD (`gap_for`): apps that all reported within their usual interval before the
# ask would otherwise keep reporting within that interval of each other, now once a gap, and
# the worker would read in bursts, slow flush after each, and idle between; with the spread
# their reports drift apart within a few gaps.
GAP_SPREAD = 0.2
# A frame is taken when at least this share of the gap has passed since the socket's last one
# taken: an app that keeps the gap sees its frames arrive a little early or late (the network,
# the server's own scheduling), and must not lose them for it.
SHED_GAP_TOLERANCE = 0.8
# How long a report waited before the service read it (in the network, the socket's buffers and
# the server's queue) is told by its `ts` against the socket's usual (`QueueClock`). Only reports
# parsed and admitted are counted, each socket once a QUEUE_WINDOW_S (its latest), so a socket
# that floods stamped frames weighs no more than one that reports every few seconds
# (`admission.ReadingDelay`). When the lower median over the sockets of a window (at least
# QUEUE_MIN_SOCKETS; the lower, so that half of them or fewer cannot raise it) is above
# CONGESTED_QUEUE_S, the worker reads behind what its sockets send: that is congestion too, seen
# before any flush slows down. While shedding, a report that waited over STALE_REPORT_S is
# dropped unused: a newer one of the same driver is behind it, and reading through a backlog of
# stale positions is what keeps every position late (the socket is not blamed for it, unless
# it stamped them closer together than any app may send: the session counts those as sent
# faster than asked).
QUEUE_WINDOW_S = 0.5
QUEUE_MIN_SOCKETS = 3
CONGESTED_QUEUE_S = 1.0
STALE_REPORT_S = 2.0
# The usual delay of a socket is the least seen over the last one to two minutes: a clock set
# anew or a slower network is learned again within that time.
QUEUE_BASELINE_S = 60.0


class Take(enum.Enum):
    """Backpressure's verdict on a location frame before it is read (`LocationIngest.takes`)."""

    taken = "taken"
    shed = "shed"  # within the gap the service asked for: the socket sends too often
    stale = "stale"  # waited too long before it was read: a newer report follows it


def _within_bounds(gap_s: float) -> float:
    """A gap to ask for, within the protocol's `report_every_ms` (MIN_SHED_GAP_S to
    MAX_SHED_GAP_S)."""
    return min(MAX_SHED_GAP_S, max(MIN_SHED_GAP_S, gap_s))


class ShedGap:
    """How often each driver's location reports are taken while the worker sheds (`gap_s`, 0
    when it does not): chosen when shedding starts from the drivers' report rate, then widened
    while congestion lasts and narrowed while flushes leave the worker idle enough, in the
    steps above. Pure: the caller says what it saw and when."""

    __slots__ = (
        "_changed",
        "_failed_at",
        "_failed_gap_s",
        "_judged",
        "_started",
        "_stop_hold_s",
        "_stopped_at",
        "_stopped_from_s",
        "_wait_s",
        "gap_s",
    )

    def __init__(self) -> None:
        self.gap_s = 0.0
        self._changed = -math.inf  # when the gap last changed
        self._judged = -math.inf  # when narrowing was last considered (or the gap changed)
        self._wait_s = 0.0  # how long after that it is considered again
        self._failed_gap_s = 0.0  # the last gap (or report interval) the worker could not take
        self._failed_at = -math.inf
        self._started = -math.inf  # when shedding last started
        self._stopped_at = -math.inf  # when it last stopped, and the gap it stopped from
        self._stopped_from_s = 0.0
        self._stop_hold_s = SHED_MEMORY_S  # how long shedding lasts at least before it stops

    def start(self, report_interval_s: float, now: float) -> None:
        """Shedding starts: each driver is asked for ONSET_SHARE of the rate it was read at
        lately, or, when shedding stopped only a moment ago, for the gap it stopped from widened
        once."""
        self._failed_gap_s, self._failed_at = report_interval_s, now
        gap = report_interval_s / ONSET_SHARE
        if now - self._stopped_at < SHED_MEMORY_S:
            # not from the rate measured lately: the apps still heed the last ask
            gap = self._stopped_from_s * SHED_WIDEN
            self._stop_hold_s = min(SHED_STOP_HOLD_MAX_S, self._stop_hold_s * 2)
        else:
            self._stop_hold_s = SHED_MEMORY_S
        self._started = now
        self._change(_within_bounds(gap), now, SHED_HOLD_S)

    def adjust(self, *, busy: float, congested: bool, now: float) -> bool:
        """After a flush, with the flushes lately keeping the worker `busy` that share of the
        time and the worker `congested` or not: whether the gap changed. Not shedding, nothing
        changes (the caller starts it)."""
        if self.gap_s <= 0.0:
            return False
        if congested:
            if now - self._changed < SHED_WIDEN_AFTER_S:
                return False
            self._failed_gap_s, self._failed_at = self.gap_s, now
            self._change(_within_bounds(self.gap_s * SHED_WIDEN), now, SHED_HOLD_S)
            return True
        if now - self._judged < self._wait_s:
            return False
        self._judged, self._wait_s = now, SHED_RELAX_S
        step = next((step for under, step in SHED_NARROWING if busy < under), None)
        if step is None:  # near capacity: judged again after another while
            return False
        narrower = self.gap_s / step
        if now - self._failed_at < SHED_MEMORY_S:
            narrower = max(narrower, self._failed_gap_s * SHED_MEMORY_MARGIN)
        if narrower < MIN_SHED_GAP_S:
            if now - self._started < self._stop_hold_s:
                narrower = MIN_SHED_GAP_S
            else:
                self._stopped_at, self._stopped_from_s = now, self.gap_s
                narrower = 0.0
        if narrower >= self.gap_s:
            return False
        self._change(narrower, now, SHED_RELAX_S)
        return True

    def for_socket(self, spread: float) -> float:
        """The gap asked of a socket whose spread (GAP_SPREAD) is `spread`: 0 when not
        shedding, else within the protocol's bounds."""
        if self.gap_s <= 0.0:
            return 0.0
        return _within_bounds(self.gap_s * spread)

    def _change(self, gap_s: float, now: float, wait_s: float) -> None:
        self.gap_s, self._changed, self._judged, self._wait_s = gap_s, now, now, wait_s


class QueueClock:
    """One socket's view of how long its reports wait before the service reads them: the
    report's `ts` (the device's clock) against the time it is read, less the least such
    difference seen lately (which holds the clocks' offset and the network's usual delay)."""

    __slots__ = ("_current", "_previous", "_started")

    def __init__(self) -> None:
        self._current = math.inf
        self._previous = math.inf
        self._started: float | None = None

    def queued_s(self, ts: float, read_at: float) -> float:
        """Seconds the report stamped `ts` (epoch seconds) waited beyond this socket's usual,
        read at `read_at` (epoch seconds)."""
        offset = read_at - ts
        if self._started is None or read_at - self._started >= QUEUE_BASELINE_S:
            self._previous, self._current, self._started = self._current, offset, read_at
        elif offset < self._current:
            self._current = offset
        return max(0.0, offset - min(self._current, self._previous))


_TS = re.compile(r'"ts"\s*:\s*"([^"]{10,40})"')


def stamped_at(raw: str) -> float | None:
    """A location frame's `ts` in epoch seconds, read without parsing the frame (None when it
    has none, or not one that reads as a time with its offset: the frame's parsing says why)."""
    found = _TS.search(raw)
    if found is None:
        return None
    try:
        stamp = datetime.fromisoformat(found.group(1))
    except ValueError:
        return None
    return stamp.timestamp() if stamp.tzinfo is not None else None
