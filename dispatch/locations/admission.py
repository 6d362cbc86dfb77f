"""What a driver socket's frames may cost before they are used: a pace per driver (`Pace`), and
the worker's reading delay told from admitted frames only, one figure per socket
(`ReadingDelay`). Pure: the callers say what they saw and when."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime, timedelta


class Pace:
    """At most one event per `interval` on average, and at most `burst` at once (the generic
    cell rate algorithm: one instant per subject, the one the next event is due at). Events
    sent apart may reach the server bunched (a busy event loop, a network that held them): the
    burst lets those through, and only a sender faster than the interval on average is
    refused."""

    __slots__ = ("_due",)

    def __init__(self) -> None:
        self._due: datetime | None = None

    def allows(self, at: datetime, *, interval: timedelta, burst: int) -> bool:
        """Whether an event at `at` is within the pace; if so it is counted."""
        due = at if self._due is None else self._due
        if at < due - interval * (burst - 1):
            return False
        self._due = max(due, at) + interval
        return True


class ReadingDelay:
    """How long the reports a worker reads waited before it read them: each socket's latest
    admitted report of a window is its figure (so a socket counts once however much it sends),
    and the worker's delay is the lower median of those figures, over windows of `window_s`
    with at least `min_sockets` sockets. Half the sockets or fewer cannot raise it, whatever
    they stamp their frames with."""

    __slots__ = ("_figures", "_min_sockets", "_started", "_window_s", "delay_s", "measured_at")

    def __init__(self, *, window_s: float, min_sockets: int, now: float) -> None:
        self._window_s = window_s
        self._min_sockets = min_sockets
        self._figures: dict[Hashable, float] = {}
        self._started = now
        self.delay_s = 0.0
        self.measured_at = now  # when `delay_s` was last measured (monotonic)

    def note(self, socket: Hashable, queued_s: float, now: float) -> None:
        """An admitted report of `socket` waited `queued_s` beyond that socket's usual."""
        self._figures[socket] = queued_s
        if now - self._started < self._window_s:
            return
        figures = sorted(self._figures.values())
        self._figures, self._started = {}, now
        if len(figures) >= self._min_sockets:
            self.delay_s = figures[(len(figures) - 1) // 2]
            self.measured_at = now
