"""What a driver socket's frames may cost before they are used: a pace per driver (`Pace`).
Pure: the callers say what they saw and when."""

from __future__ import annotations

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
