"""An outage or a bug: how a loop that goes on after a failure says which one it met.

A PostgreSQL or Redis that cannot be reached (`coop.errors.dependency_down`) is an outage: the
loop degrades, counts it, and says so once until it works again, not once per event. Anything
else is a bug: logged with its traceback every time, never as "unreachable".
"""

from __future__ import annotations

import logging

from coop.errors import dependency_down


class OutageLog:
    """One loop's failures, told apart (`failed`), and its return to work (`recovered`)."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what  # what failed, as a log line says it: "flushing driver positions"
        self.down: str | None = None  # the dependency away now, if any
        self.outages = 0  # outages begun
        self.failures = 0  # failures during outages
        self.bugs = 0

    def failed(self, exc: BaseException) -> str | None:
        """Counts and logs `exc`; answers the dependency it says is away (None: a bug)."""
        dependency = dependency_down(exc)
        if dependency is None:
            self.bugs += 1
            self.logger.error("%s failed: a bug", self.what, exc_info=exc)
            return None
        self.failures += 1
        if self.down != dependency:
            self.outages += 1
            name = "PostgreSQL" if dependency == "database" else "Redis"
            self.logger.warning(
                "%s failed: the %s (%s) is unreachable (%s); said once until it is back",
                self.what,
                dependency,
                name,
                exc,
            )
        self.down = dependency
        return dependency

    def recovered(self) -> None:
        """The loop worked: an outage, if one was on, is over."""
        if self.down is not None:
            self.logger.info("%s works again: the %s is back", self.what, self.down)
            self.down = None
