"""What the agreement needs while the service runs: the founding version, and closing votes.

Votes close by themselves: a sweep every few seconds closes each open proposal whose deadline has
passed. The sweep only reads stored state (status and voting_closes_at), so a restart neither
skips a close (the first sweep runs at start) nor repeats one (a closed proposal is not open).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bargaining import service
from coop.db import utcnow
from coop.state import Clock
from coop.tasks import TaskRunner

CLOSE_SWEEP_INTERVAL_S = 5.0


async def sweep(sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime) -> int:
    """Closes every proposal due at `now`; answers how many this sweep closed."""
    async with sessionmaker() as session:
        return len(await service.close_due(session=session, now=now))


@contextlib.asynccontextmanager
async def running(
    sessionmaker: async_sessionmaker[AsyncSession],
    tasks: TaskRunner | None = None,
    clock: Clock = utcnow,
    *,
    background_tasks: bool,
    interval_s: float = CLOSE_SWEEP_INTERVAL_S,
) -> AsyncIterator[None]:
    """Installs the founding agreement (once, ever), then closes votes while the app runs, on
    the app's runner (`tasks`; one of its own without it). A failed sweep is tried again at
    the next (`coop.tasks`: an outage logged once, a bug with its traceback)."""
    async with sessionmaker() as session:
        await service.install_founding(session=session)
    runner = tasks if tasks is not None else TaskRunner(clock=clock)

    async def close_due() -> None:
        await sweep(sessionmaker, now=clock())

    closer = runner.every("vote-closer", interval_s, close_due) if background_tasks else None
    try:
        yield
    finally:
        if closer is not None:
            await closer.stop()
