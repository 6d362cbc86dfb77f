"""Who leads a region's matcher: a PostgreSQL advisory lock held on a dedicated connection.

A worker leads while it holds the region's session-level lock (`pg_try_advisory_lock`); one that
dies drops its connection and with it the lock, and another takes over. `lead_forever` asks for
the lock, runs the leader's work while it is held, and asks again after `LEADERSHIP_RETRY_S`
whatever ended it; the matcher only sees `RegionLock.held` and `Held.confirm`.

The fence: taking the lead raises the region's epoch (`matching_leader_epoch`), and a batch
writes its offers only after reading, in the same transaction and under a share lock, that the
epoch is still the one its matcher took the lead with (`Held.fence`). A leader that lost its lock
without knowing it (its host frozen or cut off while another worker took over) finds the epoch
moved at its next batch, writes nothing, and stops leading; and a new leader's raise waits for a
batch still writing under the old epoch, so two leaders' batches never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from coop.errors import dependency_down
from coop.outages import OutageLog
from dispatch.matching.models import LeaderEpoch

logger = logging.getLogger("coop.matcher")

LEADERSHIP_RETRY_S = 2.0
# The leader renews its lease this often while it leads, batch or no batch; a lease not renewed
# for LEASE_S is a stuck leader's (a frozen or cut-off host: its PostgreSQL session, and so the
# advisory lock, can live on for a minute), and the next worker to ask ends that session.
RENEW_EVERY_S = 2.0
LEASE_S = 20.0
# A leader that has not renewed its lease for STEP_DOWN_S steps down by itself, and says it no
# longer leads from that moment: well before LEASE_S, when another worker may take over, so that
# at no moment do two workers believe they lead (a cut-off or frozen leader cannot be told).
STEP_DOWN_S = LEASE_S / 2
# A renewal that hangs (a link cut in the middle of the statement) counts as failed after this.
RENEW_TIMEOUT_S = 5.0
# Who took the lead, as the epoch's row says: the host and the process.
HOLDER = f"{socket.gethostname()}:{os.getpid()}"
# A leader that stops releases its lock; if the connection cannot say so in this time (it was
# cut in the middle of a statement), it is dropped instead, which releases the lock too.
UNLOCK_TIMEOUT_S = 5.0


def region_lock_key(region: str) -> int:
    """The advisory-lock key of a region's matcher: a stable signed 64-bit number."""
    digest = hashlib.sha256(f"coop.matcher:{region}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class LostLeadership(Exception):
    """Another worker took the lead since this one did: it must not act."""


class Held:
    """The lock, while it is held: its connection says whether it still is, and its epoch
    fences what the leader writes."""

    def __init__(
        self, connection: AsyncConnection, epoch: int | None = None, region: str = ""
    ) -> None:
        self._connection = connection
        self.epoch = epoch
        self.region = region

    async def renew(self) -> None:
        """Renews the lease on the lock's connection; raises `LostLeadership` if the epoch moved
        (another worker took the lead), or the connection's error if it is dead."""
        if self.epoch is None:
            await self.confirm()
            return
        renewed = await self._connection.execute(
            update(LeaderEpoch)
            .where(LeaderEpoch.region == self.region, LeaderEpoch.epoch == self.epoch)
            .values(renewed_at=func.now())
        )
        await self._connection.commit()
        if renewed.rowcount != 1:
            raise LostLeadership(f"the {self.region} matcher's epoch moved past {self.epoch}")

    async def confirm(self) -> None:
        """Raises when the lock's connection is dead: another worker may lead now."""
        await self._connection.execute(select(1))
        await self._connection.commit()


async def fence(session: AsyncSession, region: str, epoch: int) -> None:
    """In the caller's transaction, before it writes as the leader: raises `LostLeadership`
    unless the region's epoch is still `epoch`, and holds it (a share lock) until the caller
    commits, so a new leader's raise waits for these writes."""
    current = await session.scalar(
        select(LeaderEpoch.epoch).where(LeaderEpoch.region == region).with_for_update(read=True)
    )
    if current != epoch:
        raise LostLeadership(
            f"the {region} matcher's epoch is {current}, not {epoch}: another worker leads"
        )


async def raise_epoch(connection: AsyncConnection, region: str) -> int:
    """Takes the lead's next epoch for `region` (on the lock's own connection)."""
    statement = (
        insert(LeaderEpoch)
        .values(
            region=region, epoch=1, holder=HOLDER, acquired_at=func.now(), renewed_at=func.now()
        )
        .on_conflict_do_update(
            index_elements=[LeaderEpoch.region],
            set_={
                "epoch": LeaderEpoch.epoch + 1,
                "holder": HOLDER,
                "acquired_at": func.now(),
                "renewed_at": func.now(),
            },
        )
        .returning(LeaderEpoch.epoch)
    )
    epoch = int((await connection.execute(statement)).scalar_one())
    await connection.commit()
    return epoch


class RegionLock:
    """A region's advisory lock, asked for on a connection of its own each time."""

    def __init__(self, engine: AsyncEngine, region: str) -> None:
        self.engine = engine
        self.region = region
        self.key = region_lock_key(region)
        self.tries = 0  # times it asked for the lock
        self.takeovers = 0  # stuck leaders whose session it ended

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[Held | None]:
        """The lock for the duration of the block (None: another worker holds it); released
        at its end, or its connection dropped when it cannot say so in time."""
        async with self.engine.connect() as connection:
            got = await connection.scalar(select(func.pg_try_advisory_lock(self.key)))
            await connection.commit()
            self.tries += 1
            if not got:
                await self._end_a_stuck_lead(connection)
                yield None
                return
            try:
                yield Held(connection, await raise_epoch(connection, self.region), self.region)
            finally:
                # A session-level lock outlives transactions: release it, or drop the
                # connection (which releases it) rather than return it to the pool still held.
                unlocking = asyncio.ensure_future(self._unlock(connection))
                unlocking.add_done_callback(forget)  # its failure, if any, is dealt with here
                try:
                    await asyncio.wait_for(asyncio.shield(unlocking), UNLOCK_TIMEOUT_S)
                except (Exception, asyncio.CancelledError) as exc:
                    # The connection could not say so in time (it was cut in the middle of a
                    # statement): drop it, which releases the lock too. Whatever ended the
                    # leadership (a cancellation, the batch loop's error) goes on up as it was;
                    # re-raising this one instead would turn a cancelled leader into one that
                    # retries for ever. Anything but an outage or a timeout is a bug: said so.
                    if isinstance(exc, Exception) and not isinstance(exc, TimeoutError):
                        if dependency_down(exc) is None:
                            logger.error(
                                "releasing the %s matcher's lock failed: a bug",
                                self.region,
                                exc_info=exc,
                            )
                    await connection.invalidate()

    async def _end_a_stuck_lead(self, connection: AsyncConnection) -> None:
        """Another worker holds the lock: if its lease lapsed (it stopped renewing), end the
        PostgreSQL session that holds the lock, so the next ask takes the lead. Only that
        session: the one pg_locks shows holding this very advisory lock."""
        lease = func.make_interval(0, 0, 0, 0, 0, 0, LEASE_S)
        lapsed = await connection.scalar(
            select(LeaderEpoch.renewed_at < func.now() - lease).where(
                LeaderEpoch.region == self.region
            )
        )
        if lapsed:
            ended = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                    "AND classid = CAST((CAST(:key AS bigint) >> 32) & 4294967295 AS oid) "
                    "AND objid = CAST(CAST(:key AS bigint) & 4294967295 AS oid)"
                ),
                {"key": self.key},
            )
            if ended:
                self.takeovers += 1
                logger.warning(
                    "the %s matcher's leader stopped renewing its lease for %s s: its session "
                    "is ended, the lead is taken at the next ask",
                    self.region,
                    LEASE_S,
                )
        await connection.commit()

    async def _unlock(self, connection: AsyncConnection) -> None:
        await connection.execute(select(func.pg_advisory_unlock(self.key)))
        await connection.commit()


def forget(task: asyncio.Future[None]) -> None:
    """Marks a statement given up on (its connection then dropped) as seen, failed or not: its
    error is the connection's end, already dealt with, not a bug for the loop's log."""
    if not task.cancelled():
        task.exception()


async def lead_forever(
    lock: RegionLock, lead: Callable[[Held], Awaitable[None]], outages: OutageLog
) -> None:
    """Runs `lead` whenever this worker holds the lock, until cancelled. A database that is
    away is an outage (logged once until leading works again); any other failure is a bug,
    logged with its traceback each time, and the loop goes on: a worker that stopped asking
    would leave its region without a matcher."""
    while True:
        try:
            async with lock.held() as held:
                outages.recovered()
                if held is not None:
                    logger.info("leading the %s matcher", lock.region)
                    await lead(held)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outages.failed(exc)
        await asyncio.sleep(LEADERSHIP_RETRY_S)
