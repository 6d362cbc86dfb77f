"""Pay periods close by themselves: a sweep every few seconds closes each period whose end has
passed. It reads only stored state (`ends_at`, `closed_at`), so a restart neither skips a close
(the first sweep runs at start) nor repeats one (a closed period is not open)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.state import Clock
from coop.tasks import TaskRunner
from pay import service

CLOSE_SWEEP_INTERVAL_S = 30.0


async def sweep(sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime) -> int:
    """Closes every period due at `now`; answers how many this sweep closed."""
    async with sessionmaker() as session:
        return len(await service.close_due(session=session, now=now))


@contextlib.asynccontextmanager
async def running(
    sessionmaker: async_sessionmaker[AsyncSession],
    tasks: TaskRunner,
    clock: Clock,
    *,
    background_tasks: bool,
    interval_s: float = CLOSE_SWEEP_INTERVAL_S,
) -> AsyncIterator[None]:
    """Closes due periods while the app runs (the first sweep at start), on the app's runner:
    a failed sweep is tried again at the next (`coop.tasks`)."""

    async def close_due() -> None:
        await sweep(sessionmaker, now=clock())

    closer = tasks.every("pay-period-closer", interval_s, close_due) if background_tasks else None
    try:
        yield
    finally:
        if closer is not None:
            await closer.stop()
