"""Offer receipts: an offer counts as delivered only once the driver's socket wrote it.

The worker that holds the socket records it (`trip_offer.delivered_at`) right after the write;
an offer that times out without a receipt ends `undelivered`, not `expired`, and its driver stays
eligible for the trip (`dispatch.trips.service.expire_offers`). Receipts are written in small
batches off the socket's send loop, and retried while the database is away: a receipt that never
lands only makes an offer count as undelivered, which holds nothing against anyone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.db import utcnow
from coop.errors import dependency_down
from coop.outages import Outage
from coop.state import Clock
from coop.tasks import TaskHandle, TaskRunner
from dispatch.trips import service as trips_service

logger = logging.getLogger("coop.realtime")

RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 4.0)
DRAIN_S = 2.0
# `"type":"offer"` is how an offer frame is encoded; a string inside a frame would be escaped.
_OFFER_MARK = '"type":"offer"'


def offer_id_of(text: str) -> uuid.UUID | None:
    """The offer id of an encoded `offer` frame, None for any other frame."""
    if _OFFER_MARK not in text:
        return None
    try:
        frame = json.loads(text)
        if frame.get("type") != "offer":
            return None
        return uuid.UUID(frame["offer_id"])
    except (ValueError, KeyError, TypeError):
        return None


class OfferReceipts:
    """Records the offers this worker's driver sockets wrote, from one writer on the app's
    runner (`coop.tasks`): the database away is an outage (retried, logged once), any other
    failure a bug (the batch is dropped and the runner logs and records it)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        tasks: TaskRunner | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._tasks = tasks if tasks is not None else TaskRunner(clock=clock)
        self._waiting: set[uuid.UUID] = set()
        self._wake = asyncio.Event()
        self._writer: TaskHandle | None = None
        self._outage = Outage(logger, "offer receipts")
        self.recorded = 0
        self.failed = 0

    def start(self) -> None:
        if self._writer is None:
            self._writer = self._tasks.forever("offer-receipts", self._run)

    def sent(self, text: str) -> None:
        """Called after a frame was written to a driver's socket."""
        offer_id = offer_id_of(text)
        if offer_id is None:
            return
        self._waiting.add(offer_id)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._write()

    async def _write(self) -> None:
        attempt = 0
        while self._waiting:
            batch, self._waiting = list(self._waiting), set()
            try:
                async with self._sessionmaker() as session:
                    await trips_service.mark_delivered(
                        session=session, offer_ids=batch, now=self._clock()
                    )
            except asyncio.CancelledError:
                self._waiting.update(batch)  # for the last write, at drain
                raise
            except Exception as exc:
                dependency = dependency_down(exc)
                if dependency is None:
                    self.failed += len(batch)  # it would fail the same way again
                    raise
                self._outage.began(dependency, exc)
                if attempt >= len(RETRY_DELAYS_S):
                    # Given up: the offers count as undelivered, which holds nothing against anyone.
                    self.failed += len(batch)
                    attempt = 0
                    continue
                self._waiting.update(batch)
                await asyncio.sleep(RETRY_DELAYS_S[attempt])
                attempt += 1
            else:
                self.recorded += len(batch)
                attempt = 0
                self._outage.ended()

    async def drain(self) -> None:
        """Stops the writer, then writes what is left (for at most `DRAIN_S`)."""
        if self._writer is not None:
            await self._writer.stop()
            self._writer = None
        if not self._waiting:
            return
        try:
            await asyncio.wait_for(self._write(), DRAIN_S)
        except TimeoutError:
            logger.warning("%d offer receipts not recorded at shutdown", len(self._waiting))
        except Exception as exc:
            self._tasks.failed("offer-receipts", exc)
