"""What a proposal's impact replay costs the worker that runs it: the event loop's lag while one
New York sample day is replayed under two sets of terms, in a thread of the worker (as it ran
before) and in a process of its own (as it runs now).

A ticker sleeps 10 ms over and over on the event loop; its lateness is what every socket frame,
offer and request of that worker would wait too. Both ways run in one invocation, one after the
other, so the ratio is measured on the same machine at the same time.

    python -m loadtests.bench_replay_lag            # one sample day, both ways (~1 minute)
    python -m loadtests.bench_replay_lag --days 2
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from bargaining.terms import load_founding_terms
from dispatch.matching import replay
from dispatch.matching.replay_process import replay_in_process
from dispatch.matching.replay_sample import sample_week

TICK_S = 0.010


async def _lag_while(work: Callable[[], Awaitable[object]]) -> dict[str, float]:
    lags_ms: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(TICK_S)
            lags_ms.append((time.perf_counter() - before - TICK_S) * 1000)

    ticking = asyncio.ensure_future(ticker())
    started = time.perf_counter()
    await work()
    wall_s = time.perf_counter() - started
    done.set()
    await ticking
    lags_ms.sort()
    return {
        "wall_s": wall_s,
        "ticks": len(lags_ms),
        "median_ms": statistics.median(lags_ms),
        "p99_ms": lags_ms[int(0.99 * (len(lags_ms) - 1))],
        "max_ms": lags_ms[-1],
    }


async def main(days_n: int) -> None:
    founding = load_founding_terms()
    days = sample_week()[:days_n]

    async def in_thread() -> object:
        return await asyncio.to_thread(replay.replay, days, founding, founding, budget_s=3600)

    async def in_process() -> object:
        return await replay_in_process(
            days, founding, founding, budget_s=3600, progress=lambda *a: None
        )

    rows = {"thread": await _lag_while(in_thread), "process": await _lag_while(in_process)}
    print(f"{days_n} New York sample day(s), each replayed twice; ticker every 10 ms")
    print(f"{'where':8} {'wall s':>7} {'ticks':>6} {'median ms':>10} {'p99 ms':>8} {'max ms':>8}")
    for where, row in rows.items():
        print(
            f"{where:8} {row['wall_s']:7.1f} {row['ticks']:6d} {row['median_ms']:10.2f}"
            f" {row['p99_ms']:8.1f} {row['max_ms']:8.1f}"
        )
    thread, process = rows["thread"], rows["process"]
    print(
        f"thread/process: p99 lag x{thread['p99_ms'] / max(process['p99_ms'], 0.01):.1f},"
        f" ticks x{process['ticks'] / max(thread['ticks'], 1):.1f} more in a process"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=1)
    asyncio.run(main(parser.parse_args().days))
