"""What stalls the event loop that serves every socket: the cyclic garbage collector's pauses and
the loop's lag, as Prometheus metrics (`COOP_GC_STATS`), and the collector's tuning
(`COOP_GC_FREEZE`, `COOP_GC_THRESHOLDS`).

With thousands of sockets a process holds millions of objects, and a full collection walks them
all while no frame is read or sent: a pause that shows up directly as dispatch latency. The
monitor records each collection's duration by generation (`gc.callbacks`), and the loop lag with
a task on the app's runner (`coop.tasks`) that sleeps a fixed interval and records how late it
wakes up. docs/performance.md has
the figures.
"""

from __future__ import annotations

import contextlib
import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from coop.tasks import TaskHandle, TaskRunner

PAUSE_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
LAG_PROBE_INTERVAL_S = 0.05


def tune_gc(*, freeze: bool, thresholds: tuple[int, int, int] | None) -> None:
    """Applies the collector's settings once start-up is done: `freeze` moves every object alive
    now (modules, the app, its pools) out of the collector's sight for good, so full
    collections stop walking them; `thresholds` are `gc.set_threshold`'s three numbers."""
    if thresholds is not None:
        gc.set_threshold(*thresholds)
    if freeze:
        gc.collect()
        gc.freeze()


class PauseMonitor:
    """Collector pauses and loop lag of this process, recorded into `registry` while running."""

    def __init__(self, registry: CollectorRegistry, *, tasks: TaskRunner | None = None) -> None:
        self.registry = registry
        self._tasks = tasks if tasks is not None else TaskRunner()
        self.gc_pause = Histogram(
            "coop_gc_pause_seconds",
            "Duration of the cyclic garbage collector's runs, by generation",
            ["generation"],
            buckets=PAUSE_BUCKETS_S,
            registry=registry,
        )
        self.gc_pause_max = Gauge(
            "coop_gc_pause_max_seconds",
            "Longest run of the cyclic garbage collector so far, by generation",
            ["generation"],
            registry=registry,
        )
        self.gc_collected = Counter(
            "coop_gc_collected_objects",
            "Objects the cyclic garbage collector freed, by generation",
            ["generation"],
            registry=registry,
        )
        self.loop_lag = Histogram(
            "coop_event_loop_lag_seconds",
            f"How late a {LAG_PROBE_INTERVAL_S:g} s sleep of the event loop wakes up",
            buckets=PAUSE_BUCKETS_S,
            registry=registry,
        )
        self.loop_lag_max = Gauge(
            "coop_event_loop_lag_max_seconds",
            "Longest event-loop lag seen so far",
            registry=registry,
        )
        self._longest = [0.0, 0.0, 0.0]
        self._longest_lag = 0.0
        self._started_at = 0.0
        self._task: TaskHandle | None = None
        self._slept_from = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_at = time.perf_counter()
            return
        pause = time.perf_counter() - self._started_at
        generation = int(info.get("generation", 0))
        label = str(generation)
        self.gc_pause.labels(label).observe(pause)
        self.gc_collected.labels(label).inc(int(info.get("collected", 0)))
        if pause > self._longest[generation]:
            self._longest[generation] = pause
            self.gc_pause_max.labels(label).set(pause)

    async def _probe(self) -> None:
        """One reading: how late the runner's sleep since the last one ended."""
        now = time.perf_counter()
        lag = max(0.0, now - self._slept_from - LAG_PROBE_INTERVAL_S)
        self._slept_from = now
        self.loop_lag.observe(lag)
        if lag > self._longest_lag:
            self._longest_lag = lag
            self.loop_lag_max.set(lag)

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        # The first reading is taken after one interval, measured from here.
        self._slept_from = time.perf_counter()
        self._task = self._tasks.every(
            "loop-lag-probe",
            LAG_PROBE_INTERVAL_S,
            self._probe,
            first_after_s=LAG_PROBE_INTERVAL_S,
        )

    async def stop(self) -> None:
        """Stops recording and takes the metrics off the registry."""
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            await self._task.stop()
            self._task = None
        for metric in (
            self.gc_pause,
            self.gc_pause_max,
            self.gc_collected,
            self.loop_lag,
            self.loop_lag_max,
        ):
            with contextlib.suppress(KeyError):
                self.registry.unregister(metric)
