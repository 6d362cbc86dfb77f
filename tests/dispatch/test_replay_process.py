"""A replay in its own process: the same figures as in the caller's, the child's progress seen
from the event loop, its budget, a child that fails, and a stop that kills it at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from bargaining.impact_replay import Progress, ReplayStopped
from bargaining.terms import load_founding_terms
from dispatch.matching.replay import BudgetExceeded, replay
from dispatch.matching.replay_process import ReplayProcessFailed, replay_in_process
from tests.dispatch.helpers import small_day


async def test_the_process_answers_the_figures_the_replay_gives_in_the_caller() -> None:
    founding = load_founding_terms()
    days = [small_day(7), small_day(8)]
    seen: list[tuple[int, int]] = []
    figures = await replay_in_process(
        days, founding, founding, budget_s=120, progress=lambda *a: seen.append(a)
    )
    assert figures == [f.to_wire() for f in replay(days, founding, founding, budget_s=120)]
    # Read from the shared counters while the child ran, and once more at its answer.
    assert seen[-1] == (4, 4)
    assert seen == sorted(seen)


async def test_a_replay_past_its_budget_raises_as_in_the_caller() -> None:
    founding = load_founding_terms()
    with pytest.raises(BudgetExceeded):
        await replay_in_process(
            [small_day(9)], founding, founding, budget_s=0.0, progress=lambda *a: None
        )


async def test_a_child_that_raises_is_reported_with_its_error() -> None:
    founding = load_founding_terms()
    # A day whose arrays disagree in length: the replay itself fails, in the child.
    broken = small_day(10)
    broken = type(broken)(**{**broken.__dict__, "trip_s": broken.trip_s[:3]})
    with pytest.raises(ReplayProcessFailed, match="Error"):
        await replay_in_process([broken], founding, founding, budget_s=60, progress=lambda *a: None)


async def test_a_stopped_job_kills_its_child_at_once() -> None:
    founding = load_founding_terms()
    progress = Progress()
    # Days enough for a minute of work; the app stops as soon as the child has started.
    days = [small_day(seed, requests=600, drivers=80) for seed in range(20, 40)]
    work = asyncio.ensure_future(
        replay_in_process(days, founding, founding, budget_s=600, progress=progress)
    )
    await asyncio.sleep(1.0)
    progress.stopped = True
    started = time.monotonic()
    with pytest.raises(ReplayStopped):
        await work
    assert time.monotonic() - started < 5
    assert progress.done < progress.total or progress.total == 0


async def test_a_cancelled_replay_leaves_no_child_running() -> None:
    import multiprocessing

    founding = load_founding_terms()
    days = [small_day(seed, requests=600, drivers=80) for seed in range(40, 60)]
    work = asyncio.ensure_future(
        replay_in_process(days, founding, founding, budget_s=600, progress=lambda *a: None)
    )
    await asyncio.sleep(1.0)
    assert [p.name for p in multiprocessing.active_children()] == ["impact-replay"]
    work.cancel()
    with pytest.raises(asyncio.CancelledError):
        await work
    assert multiprocessing.active_children() == []
