"""Pay periods close by themselves: a sweep every few seconds closes each period whose end has
passed. It reads only stored state (`ends_at`, `closed_at`), so a restart neither skips a close
(the first sweep runs at start) nor repeats one (a closed period is not open)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.db import utcnow
from pay import service

logger = logging.getLogger("coop.pay")

CLOSE_SWEEP_INTERVAL_S = 30.0


async def sweep(
    sessionmaker: async_sessionmaker[AsyncSession], clock: Callable[[], datetime] = utcnow
) -> int:
    """Closes every period due now; answers how many this sweep closed."""
    async with sessionmaker() as session:
        return len(await service.close_due(session=session, now=clock()))


async def run_closer(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    *,
    interval_s: float = CLOSE_SWEEP_INTERVAL_S,
) -> None:
    while True:
        try:
            await sweep(sessionmaker, clock)
        except Exception:  # the database may be away for a moment: try again next time
            logger.exception("closing due pay periods failed; retrying in %s s", interval_s)
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def running(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    *,
    background_tasks: bool,
) -> AsyncIterator[None]:
    """Closes due periods while the app runs (the first sweep at start)."""
    closer = (
        asyncio.create_task(run_closer(sessionmaker, clock), name="pay-period-closer")
        if background_tasks
        else None
    )
    try:
        yield
    finally:
        if closer is not None:
            closer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closer
