"""The one runner of a process's background work, owned by the app lifespan (`CoreState.tasks`).

`every(name, interval_s, step)` runs a step, then waits `interval_s` after it ends (so a slow step
never piles up behind itself); `forever(name, run)` runs a long-lived coroutine and restarts it,
after a capped exponential backoff (no jitter: the same failures give the same delays), whenever
it ends or raises. `stop` cancels every task, newest first, and waits for them (bounded).

One rule for what a task's failure means (docs/architecture.md, "Background tasks"):

- PostgreSQL or Redis unreachable (`coop.errors.dependency_down`) is an **outage**: the task
  degrades (tries again at its next tick, or after its backoff), the failure is counted, and the
  outage is logged once, a warning when it starts and an info when the task works again.
- Anything else is a **bug**: logged with its traceback, counted, and recorded in `bugs`, which
  the test suite reads after every test that ran an app, so a bug fails the test that caused it.

Metrics, on the app's registry: `coop_task_runs_total`, `coop_task_failures_total` (by `kind`:
outage or bug), `coop_task_restarts_total` and `coop_task_last_success_timestamp_seconds`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge

from coop.db import utcnow
from coop.errors import dependency_down
from coop.outages import Outage

logger = logging.getLogger("coop.tasks")

Clock = Callable[[], datetime]
Step = Callable[[], Awaitable[object]]

# A restarted coroutine waits 0.1 s, then twice as long each time it fails again, up to this.
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 30.0
# A coroutine that has run this long since its last (re)start counts as working again: its
# backoff starts over, and an outage it was restarted for is logged as ended.
STEADY_AFTER_S = 10.0
STOP_TIMEOUT_S = 5.0
# The bugs kept for the test suite to read: the latest ones, so a bug that repeats at every tick
# of a long-running worker holds no growing list.
BUGS_KEPT = 100


def backoff_s(failures: int) -> float:
    """The wait before restart number `failures` (1, 2, ...): doubling, capped, deterministic."""
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0 ** max(0, failures - 1)))


@dataclass(frozen=True)
class TaskBug:
    """A failure of a background task that was no outage."""

    task: str
    error: BaseException


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "coop_task_runs",
            "Background task runs: steps of periodic tasks, starts of long-running ones",
            ["task"],
            registry=registry,
        )
        self.failures = Counter(
            "coop_task_failures",
            "Background task failures, by kind: outage (PostgreSQL or Redis unreachable) or bug",
            ["task", "kind"],
            registry=registry,
        )
        self.restarts = Counter(
            "coop_task_restarts",
            "Long-running background tasks restarted after they ended or failed",
            ["task"],
            registry=registry,
        )
        self.last_success = Gauge(
            "coop_task_last_success_timestamp_seconds",
            "When each background task last succeeded (a step returned, or a long-running one "
            "had run steadily), by the service's clock",
            ["task"],
            registry=registry,
        )


class TaskHandle:
    """One task of the runner; `stop` cancels it and waits for it."""

    def __init__(self, runner: TaskRunner, name: str, task: asyncio.Task[None]) -> None:
        self.runner = runner
        self.name = name
        self.task = task

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        await self.runner._stop_one(self, timeout_s)


class TaskRunner:
    """Every background task of a process, under the one rule for errors."""

    def __init__(self, *, registry: CollectorRegistry | None = None, clock: Clock = utcnow) -> None:
        # A runner made without the app's registry (a test, a tool) still counts, unseen.
        self._metrics = _Metrics(registry if registry is not None else CollectorRegistry())
        self._clock = clock
        self._handles: list[TaskHandle] = []
        self._outages: dict[str, Outage] = {}
        self.bugs: list[TaskBug] = []

    @property
    def names(self) -> list[str]:
        """The tasks running now, oldest first."""
        return [handle.name for handle in self._handles if not handle.task.done()]

    def every(
        self, name: str, interval_s: float, step: Step, *, first_after_s: float = 0.0
    ) -> TaskHandle:
        """Runs `step` after `first_after_s`, then `interval_s` after each run ends."""
        return self._spawn(name, self._periodic(name, interval_s, step, first_after_s))

    def forever(self, name: str, run: Step) -> TaskHandle:
        """Runs `run` until the runner stops, restarting it (after a backoff) when it ends."""
        return self._spawn(name, self._supervised(name, run))

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stops every task, newest first (what started last may use what started before it),
        each awaited before the next is cancelled; all within `timeout_s`."""
        handles, self._handles = list(reversed(self._handles)), []
        deadline = time.monotonic() + timeout_s
        for handle in handles:
            await self._stop_one(handle, max(0.0, deadline - time.monotonic()))

    async def _stop_one(self, handle: TaskHandle, timeout_s: float) -> None:
        if handle in self._handles:
            self._handles.remove(handle)
        handle.task.cancel()
        if not handle.task.done():
            _, late = await asyncio.wait([handle.task], timeout=timeout_s)
            if late:
                logger.warning("background task %s did not stop in time", handle.name)

    def _spawn(self, name: str, body: Awaitable[None]) -> TaskHandle:
        task = asyncio.ensure_future(body)
        task.set_name(name)
        handle = TaskHandle(self, name, task)
        self._handles = [h for h in self._handles if not h.task.done()] + [handle]
        return handle

    def _outage(self, name: str) -> Outage:
        outage = self._outages.get(name)
        if outage is None:
            outage = self._outages[name] = Outage(logger, f"background task {name}")
        return outage

    def failed(self, name: str, exc: Exception) -> None:
        """Counts and logs a task's failure by the rule: an outage once, a bug every time. Also
        for the one-off tasks of a part (the hub's), which report their failures here."""
        dependency = dependency_down(exc)
        if dependency is not None:
            self._metrics.failures.labels(name, "outage").inc()
            self._outage(name).began(dependency, exc)
            return
        self._metrics.failures.labels(name, "bug").inc()
        self.bugs.append(TaskBug(name, exc))
        del self.bugs[:-BUGS_KEPT]
        logger.error(
            "background task %s failed: %s",
            name,
            type(exc).__name__,
            exc_info=(type(exc), exc, exc.__traceback__),
        )

    def succeeded(self, name: str) -> None:
        self._metrics.last_success.labels(name).set(self._clock().timestamp())
        self._outage(name).ended()

    async def _periodic(self, name: str, interval_s: float, step: Step, first_s: float) -> None:
        if first_s > 0:
            await asyncio.sleep(first_s)
        while True:
            self._metrics.runs.labels(name).inc()
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed(name, exc)
            else:
                self.succeeded(name)
            await asyncio.sleep(interval_s)

    async def _supervised(self, name: str, run: Step) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            self._metrics.runs.labels(name).inc()
            started = time.monotonic()
            steady = loop.call_later(STEADY_AFTER_S, self.succeeded, name)
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed(name, exc)
            else:
                logger.warning("background task %s ended; restarting it", name)
            finally:
                steady.cancel()
            failures = 1 if time.monotonic() - started >= STEADY_AFTER_S else failures + 1
            self._metrics.restarts.labels(name).inc()
            await asyncio.sleep(backoff_s(failures))
