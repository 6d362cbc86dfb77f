"""What the agreement needs while the service runs: the founding version, and closing votes.

Votes close by themselves: a sweep every few seconds closes each open proposal whose deadline has
passed. The sweep only reads stored state (status and voting_closes_at), so a restart neither
skips a close (the first sweep runs at start) nor repeats one (a closed proposal is not open).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bargaining import service
from coop.db import utcnow

logger = logging.getLogger("coop.bargaining")

CLOSE_SWEEP_INTERVAL_S = 5.0


async def sweep(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Closes every proposal due now; answers how many this sweep closed."""
    async with sessionmaker() as session:
        return len(await service.close_due(session=session, now=utcnow()))


async def run_closer(
    sessionmaker: async_sessionmaker[AsyncSession], *, interval_s: float = CLOSE_SWEEP_INTERVAL_S
) -> None:
    """Sweeps for due proposals until cancelled; a failed sweep is logged and retried."""
    while True:
        try:
            await sweep(sessionmaker)
        except Exception:  # the database may be away for a moment: try again next time
            logger.exception("closing due proposals failed; retrying in %s s", interval_s)
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def running(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    background_tasks: bool,
    interval_s: float = CLOSE_SWEEP_INTERVAL_S,
) -> AsyncIterator[None]:
    """Installs the founding agreement (once, ever), then closes votes while the app runs."""
    async with sessionmaker() as session:
        await service.install_founding(session=session)
    closer = (
        asyncio.create_task(run_closer(sessionmaker, interval_s=interval_s), name="vote-closer")
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
