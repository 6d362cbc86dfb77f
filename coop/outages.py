"""An outage or a bug: one rule for every catch-all of a loop or a worker that goes on after a
failure (docs/architecture.md, "Background tasks").

A PostgreSQL or Redis that cannot be reached (`coop.errors.dependency_down`) is an outage: the
caller degrades, counts it, and it is logged once, a warning when it starts and an info when it
ends, not a line per tick or per event. Anything else is a bug: logged with its traceback every
time, never called "unreachable".
"""

from __future__ import annotations

import logging

from coop.errors import dependency_down

PRODUCT = {"database": "PostgreSQL", "redis": "Redis"}


class Outage:
    """One outage logged once: a warning when it starts, an info when it ends."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self.dependency: str | None = None

    @property
    def ongoing(self) -> bool:
        return self.dependency is not None

    @property
    def down(self) -> str | None:
        """The dependency away now, if any."""
        return self.dependency

    def began(self, dependency: str, exc: BaseException) -> None:
        # The exception's type only: a database error's message can quote a row.
        self.began_named(dependency, type(exc).__name__)

    def began_named(self, dependency: str, reason: str) -> None:
        if self.dependency != dependency:
            self.log.warning(
                "%s: %s unreachable (%s, %s); degraded until it answers",
                self.what,
                dependency,
                PRODUCT.get(dependency, dependency),
                reason,
            )
        self.dependency = dependency

    def ended(self) -> None:
        if self.dependency is not None:
            self.log.info("%s: %s answers again", self.what, self.dependency)
        self.dependency = None


class OutageLog(Outage):
    """A loop's failures told apart by the rule (`failed`), counted, and its return to work
    (`recovered`)."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        super().__init__(log, what)
        self.outages = 0  # outages begun
        self.failures = 0  # failures during outages
        self.bugs = 0

    def failed(self, exc: BaseException) -> str | None:
        """Counts and logs `exc`; answers the dependency it says is away (None: a bug)."""
        dependency = dependency_down(exc)
        if dependency is None:
            self.bugs += 1
            self.log.error("%s failed: a bug", self.what, exc_info=exc)
            return None
        self.failures += 1
        if self.dependency != dependency:
            self.outages += 1
        self.began(dependency, exc)
        return dependency

    def recovered(self) -> None:
        """The loop worked: an outage, if one was on, is over."""
        self.ended()
