"""Offers carried by push to drivers whose socket does not have them: at once when no socket of
the driver is open on any worker (the batch's publish reached none), and a second later when a
socket took the frame but never wrote it (the offer has no delivery receipt by then).

The matcher only calls `offered`, which queues and returns: the checks and the pushes run on
this worker's own task, and the sender's queue is bounded (`coop.push.sender`).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.auth import Role
from coop.errors import dependency_down
from coop.outages import Outage
from coop.push.message import Urgency
from coop.push.sender import Push, PushSender
from coop.state import Clock
from coop.tasks import TaskHandle, TaskRunner
from dispatch.states import OfferStatus
from dispatch.trips.models import Offer, Trip

logger = logging.getLogger("coop.realtime")

# How long a socket has to write an offer's frame before a push carries it too.
RECEIPT_WAIT_S = 1.0
# One topic for every offer: a newer offer's push replaces an older one still undelivered.
OFFER_TOPIC = "offer"


def offer_push(offer: Offer, trip: Trip, now: datetime) -> Push | None:
    """The push of an offer: what the phone needs to show the card (the app fetches the rest
    once opened); None once the offer has expired."""
    ttl_s = int((offer.expires_at - now).total_seconds())
    if ttl_s <= 0:
        return None
    return Push(
        role=Role.driver,
        subject_id=offer.driver_id,
        kind="offer",
        data={
            "kind": "offer",
            "offer_id": str(offer.id),
            "trip_id": str(trip.id),
            "expires_at": offer.expires_at.isoformat(),
            "pickup_eta_s": offer.pickup_eta_s,
            "pickup_distance_m": offer.pickup_distance_m,
            "fare_estimate": str(trip.quote["total"]),
            "currency": trip.currency,
            "wheelchair_accessible": trip.wheelchair_accessible,
        },
        ttl_s=ttl_s,
        urgency=Urgency.high,
        topic=OFFER_TOPIC,
    )


class OfferPushes:
    def __init__(
        self,
        sender: PushSender,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        tasks: TaskRunner,
        clock: Clock,
        receipt_wait_s: float = RECEIPT_WAIT_S,
    ) -> None:
        self._sender = sender
        self._sessionmaker = sessionmaker
        self._tasks = tasks
        self._clock = clock
        self._receipt_wait_s = receipt_wait_s
        # (when to check, a tie-breaker, the offer, its trip), soonest first.
        self._due: list[tuple[float, int, Offer, Trip]] = []
        self._count = 0
        self._wake = asyncio.Event()
        self._checker: TaskHandle | None = None
        self._outage = Outage(logger, "offer pushes (receipts unreadable)")
        self.pushed_at_once = 0
        self.pushed_after_wait = 0

    def start(self) -> None:
        if self._checker is None:
            self._checker = self._tasks.forever("offer-pushes", self._run)

    async def stop(self) -> None:
        if self._checker is not None:
            await self._checker.stop()
            self._checker = None

    def offered(self, made: list[tuple[Offer, Trip]], unheard: set[uuid.UUID]) -> None:
        """A batch's offers (the matcher's hook): never waits."""
        now = self._clock()
        check_at = asyncio.get_running_loop().time() + self._receipt_wait_s
        for offer, trip in made:
            if offer.id in unheard:
                self._push(offer, trip, now)
                self.pushed_at_once += 1
            else:
                self._count += 1
                heapq.heappush(self._due, (check_at, self._count, offer, trip))
        self._wake.set()

    def _push(self, offer: Offer, trip: Trip, now: datetime) -> None:
        push = offer_push(offer, trip, now)
        if push is not None:
            self._sender.submit(push)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._due:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait_s = self._due[0][0] - loop.time()
            if wait_s > 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), wait_s)
                except TimeoutError:
                    pass
                continue
            due: list[tuple[Offer, Trip]] = []
            while self._due and self._due[0][0] <= loop.time():
                _, _, offer, trip = heapq.heappop(self._due)
                due.append((offer, trip))
            await self._check(due)

    async def _check(self, due: list[tuple[Offer, Trip]]) -> None:
        """Pushes those of `due` still pending that no socket wrote."""
        try:
            async with self._sessionmaker() as session:
                unwritten = set(
                    await session.scalars(
                        select(Offer.id).where(
                            Offer.id.in_([offer.id for offer, _ in due]),
                            Offer.status == OfferStatus.pending,
                            Offer.delivered_at.is_(None),
                        )
                    )
                )
        except Exception as exc:
            dependency = dependency_down(exc)
            if dependency is None:
                raise
            # Unknown whether they were written: pushed, since a push too many costs a
            # notification and one too few costs the rider a batch.
            self._outage.began(dependency, exc)
            unwritten = {offer.id for offer, _ in due}
        else:
            self._outage.ended()
        now = self._clock()
        for offer, trip in due:
            if offer.id in unwritten:
                self._push(offer, trip, now)
                self.pushed_after_wait += 1
