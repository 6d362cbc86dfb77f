"""The live stream of shared trips: Server-Sent Events, pushed by one producer per worker.

Server-Sent Events rather than a WebSocket: the stream only goes one way, a browser's
`EventSource` reconnects by itself after a cut, it needs no token or handshake of ours, and it
passes any proxy that passes HTTP. The producer reads every link watched on this worker in one
query each `TICK_S` (positions are flushed to PostGIS every 250 ms), only while a stream is
open, and wakes a stream only when what its link shows changed: a hundred people following one
trip cost the database what one does. Positions reach PostgreSQL from whichever worker holds the
driver's socket, so any worker can serve any link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

from fastapi import FastAPI

from coop.errors import dependency_down
from coop.outages import Outage
from coop.state import CoreState, state_of
from coop.tasks import TaskHandle
from dispatch.safety import share_views
from dispatch.safety.share_views import SharedRow, SharedTripView
from dispatch.trips.state import TripsState

logger = logging.getLogger("coop.safety.share")

TICK_S = 1.0
KEEPALIVE_S = 15.0
RETRY_MS = 3000


def trip_event(view: SharedTripView) -> bytes:
    return f"event: trip\ndata: {view.model_dump_json()}\n\n".encode()


GONE_EVENT = b'event: gone\ndata: {"status": "gone"}\n\n'


def event_of(row: SharedRow | None, app: FastAPI, now: datetime) -> tuple[bytes, bool]:
    """The event a link's row makes now, and whether it is the stream's last: a link revoked,
    expired or deleted is `gone`; a trip over is shown once more as it ended."""
    if row is None or not row.live:
        return GONE_EVENT, True
    view = SharedTripView.of(row, state_of(app, TripsState).route_duration(now))
    return trip_event(view), view.over


class ShareFeed:
    """The producer and the streams of this worker; lives as long as the app (`running`)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.watched: dict[uuid.UUID, int] = {}
        self.latest: dict[uuid.UUID, tuple[int, bytes, bool]] = {}
        self.sequence = 0
        self.generation = 0  # raised by `cut`: every stream open before it ends
        self.changed = asyncio.Condition()
        self.closing = False
        self._wanted = asyncio.Event()
        self._task: TaskHandle | None = None
        self._outage = Outage(logger, "the shared trips' live stream")

    def start(self) -> None:
        self._task = state_of(self.app, CoreState).tasks.forever("share-feed", self._run)

    def watch(self, share_id: uuid.UUID) -> None:
        self.watched[share_id] = self.watched.get(share_id, 0) + 1
        self._wanted.set()

    def unwatch(self, share_id: uuid.UUID) -> None:
        left = self.watched.get(share_id, 0) - 1
        if left > 0:
            self.watched[share_id] = left
            return
        self.watched.pop(share_id, None)
        self.latest.pop(share_id, None)
        if not self.watched:
            self._wanted.clear()

    async def _run(self) -> None:
        while not self.closing:
            await self._wanted.wait()
            await self._produce()

    async def _produce(self) -> None:
        while self.watched and not self.closing:
            try:
                await self.tick()
            except Exception as exc:
                dependency = dependency_down(exc)
                if dependency is None:
                    raise  # a bug: the runner records it and starts the producer again
                self._outage.began(dependency, exc)  # the pages keep the last state meanwhile
            else:
                self._outage.ended()
            await asyncio.sleep(TICK_S)

    async def tick(self) -> None:
        """Reads every watched link once and wakes the streams whose link changed."""
        ids = list(self.watched)
        now = state_of(self.app, CoreState).clock()
        async with state_of(self.app, CoreState).sessionmaker() as session:
            found = await share_views.rows(session=session, share_ids=ids, now=now)
        made: dict[tuple[object, ...], tuple[bytes, bool]] = {}  # links of one trip: one view
        async with self.changed:
            for share_id in ids:
                if share_id not in self.watched:
                    continue
                row = found.get(share_id)
                key = row.trip_key() if row is not None else (share_id,)
                if key not in made:
                    made[key] = event_of(row, self.app, now)
                event, last = made[key]
                before = self.latest.get(share_id)
                if before is None or before[1] != event:
                    self.sequence += 1
                    self.latest[share_id] = (self.sequence, event, last)
            self.changed.notify_all()

    async def next_event(
        self, share_id: uuid.UUID, after: int, generation: int, timeout_s: float
    ) -> tuple[int, bytes | None, bool]:
        """The link's next event after `after` (None on a keep-alive timeout), and whether the
        stream ends with it (its last state, or a `cut`)."""

        def ready() -> bool:
            latest = self.latest.get(share_id)
            return (
                (latest is not None and latest[0] > after)
                or self.closing
                or self.generation != generation
            )

        async with self.changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait_for(ready), timeout_s)
            if self.closing or self.generation != generation:
                return after, None, True
            latest = self.latest.get(share_id)
            if latest is not None and latest[0] > after:
                return latest[0], latest[1], latest[2]
            return after, None, False

    async def cut(self) -> None:
        """Ends every open stream now; their pages reconnect by themselves (to this worker or
        another). A worker about to stop does this, so no page waits on a dead connection."""
        async with self.changed:
            self.generation += 1
            self.changed.notify_all()

    async def close(self) -> None:
        self.closing = True
        async with self.changed:
            self.changed.notify_all()
        if self._task is not None:
            await self._task.stop()
            self._task = None


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    app.state.share_feed = ShareFeed(app)
    app.state.share_feed.start()
    try:
        yield
    finally:
        await app.state.share_feed.close()


def feed_of(app: FastAPI) -> ShareFeed:
    feed: ShareFeed = app.state.share_feed
    return feed
