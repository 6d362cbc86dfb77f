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
from dispatch.trips import service as trips_service

logger = logging.getLogger("coop.realtime")

RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 4.0)
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
    """Records the offers this worker's driver sockets wrote."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._waiting: set[uuid.UUID] = set()
        self._task: asyncio.Task[None] | None = None
        self.recorded = 0
        self.failed = 0

    def sent(self, text: str) -> None:
        """Called after a frame was written to a driver's socket."""
        offer_id = offer_id_of(text)
        if offer_id is None:
            return
        self._waiting.add(offer_id)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write(), name="offer-receipts")

    async def _write(self) -> None:
        attempt = 0
        while self._waiting:
            batch, self._waiting = list(self._waiting), set()
            try:
                async with self._sessionmaker() as session:
                    await trips_service.mark_delivered(
                        session=session, offer_ids=batch, now=utcnow()
                    )
                self.recorded += len(batch)
                attempt = 0
            except Exception:
                if attempt >= len(RETRY_DELAYS_S):
                    self.failed += len(batch)
                    logger.warning("gave up recording %d offer receipts", len(batch))
                    attempt = 0
                    continue
                logger.warning("recording %d offer receipts failed; retrying", len(batch))
                self._waiting.update(batch)
                await asyncio.sleep(RETRY_DELAYS_S[attempt])
                attempt += 1

    async def drain(self) -> None:
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(task, 2.0)
            except Exception:
                task.cancel()
