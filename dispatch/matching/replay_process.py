"""A replay in a process of its own.

A week of a city replayed twice is minutes of numpy, k-d trees and the solver, and most of that
holds the interpreter's lock: in a thread of the worker it would slow every socket, offer and
request that worker serves for as long. In its own process it shares nothing with them but a
core. The child is started with `spawn`, never `fork`: a fork would copy the worker's event loop,
its open sockets and its pools of database connections into a process that must not touch them.

The child reports its progress in two shared integers and its answer once, through a pipe. The
parent polls both from the event loop; when the app stops (the task is cancelled, or `progress`
raises because the job was stopped) the child is killed at once instead of computing on for
nobody.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from bargaining.terms import Terms
from dispatch.matching import replay

# How often the parent looks at the child's progress and answer.
POLL_S = 0.2
# After its answer, the child only has to exit: it gets this long before it is killed.
EXIT_WAIT_S = 5.0


class ReplayProcessFailed(RuntimeError):
    """The replay's process raised, or died without an answer (killed, out of memory)."""


def _child(
    days: list[replay.Day],
    current: Terms,
    proposed: Terms,
    budget_s: float,
    done: Synchronized[int],
    total: Synchronized[int],
    answer: Connection,
) -> None:
    def progress(done_now: int, total_now: int) -> None:
        total.value, done.value = total_now, done_now

    try:
        figures = replay.replay(days, current, proposed, budget_s=budget_s, progress=progress)
        answer.send(("done", [f.to_wire() for f in figures]))
    except replay.BudgetExceeded:
        answer.send(("over_budget", None))
    except BaseException as error:  # the parent reports it; the child has no one else to tell
        answer.send(("failed", f"{type(error).__name__}: {error}"))
    finally:
        answer.close()


async def replay_in_process(
    days: list[replay.Day],
    current: Terms,
    proposed: Terms,
    *,
    budget_s: float,
    progress: Callable[[int, int], None],
) -> list[dict[str, Any]]:
    """`replay.replay(...)` in a child process, its figures on the wire; raises
    `replay.BudgetExceeded` as the replay does, `ReplayProcessFailed` if the child failed, and
    whatever `progress` raises (the child is then killed)."""
    context = multiprocessing.get_context("spawn")
    done, total = context.Value("i", 0), context.Value("i", 0)
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(
        target=_child,
        args=(days, current, proposed, budget_s, done, total, sending),
        name="impact-replay",
        daemon=True,
    )
    process.start()
    # Only the child writes: with the parent's copy closed, a child that dies reads as EOF.
    sending.close()
    answered = False
    try:
        while not receiving.poll():
            if not process.is_alive() and not receiving.poll():
                raise ReplayProcessFailed(f"the replay's process exited ({process.exitcode})")
            progress(done.value, total.value)
            await asyncio.sleep(POLL_S)
        try:
            kind, body = receiving.recv()
        except EOFError as error:
            raise ReplayProcessFailed("the replay's process exited without an answer") from error
        answered = True
        progress(done.value, total.value)
    finally:
        receiving.close()
        if answered and process.is_alive():
            await asyncio.to_thread(process.join, EXIT_WAIT_S)
        if process.is_alive():
            # Stopped, cancelled or stuck: SIGKILL is answered by the kernel at once.
            process.kill()
            process.join(EXIT_WAIT_S)
    if kind == "over_budget":
        raise replay.BudgetExceeded()
    if kind == "failed":
        raise ReplayProcessFailed(body)
    figures: list[dict[str, Any]] = body
    return figures
