"""Running a benchmark, and the pauses of its own process: GC runs and event-loop lag."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from collections.abc import Coroutine
from typing import Any

from loadtests.report import log, percentile


def run_bench(main: Coroutine[Any, Any, int]) -> int:
    """Runs a benchmark's main coroutine on uvloop when installed; SIGTERM ends it like Ctrl-C,
    so its `finally` blocks stop what it started."""

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        import uvloop

        return uvloop.run(main)
    except ImportError:
        return asyncio.run(main)
    except KeyboardInterrupt:
        log("interrupted; everything it started is stopped")
        return 130


class GcWatch:
    """Durations of the cyclic garbage collector's runs in this process, by generation."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._started)

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)

    def reset(self) -> None:
        for pauses in self.pauses.values():
            pauses.clear()

    def summary(self) -> str:
        everything = [p for pauses in self.pauses.values() for p in pauses]
        counts = "/".join(str(len(self.pauses[g])) for g in (0, 1, 2))
        if not everything:
            return "no collections"
        return (
            f"{counts} collections (gen 0/1/2), longest {max(everything) * 1000:.1f} ms, "
            f"total {sum(everything) * 1000:.0f} ms"
        )


def freeze_generator() -> None:
    """The generator's own collector tuning, once its sockets are open: everything alive now
    (10,000 clients and their state) lives to the end, so `gc.freeze()` takes it out of every
    later collection; a full collection otherwise walks it all and stalls the sockets' timing
    by 100 ms or more."""
    gc.collect()
    gc.freeze()


class LoopLag:
    """Event-loop lag: a task that sleeps `interval_s` and records how late it woke up."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _probe(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            self.lags.append(max(0.0, time.perf_counter() - before - self.interval_s))

    def start(self) -> None:
        self._task = asyncio.create_task(self._probe())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def summary(self) -> str:
        if not self.lags:
            return "no samples"
        return (
            f"p50 {percentile(self.lags, 50) * 1000:.1f} ms, "
            f"p99 {percentile(self.lags, 99) * 1000:.1f} ms, max {max(self.lags) * 1000:.0f} ms"
        )
