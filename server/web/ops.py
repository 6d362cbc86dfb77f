"""The live feed of the operations map: one snapshot of the city per matching batch, sent to
every open map as Server-Sent Events.

One producer per process (a task on the app's runner, `coop.tasks`) reads the snapshot
(`dispatch.trips.figures.map_snapshot`: three indexed queries) at the agreement's batch interval
while at least one map is open, and every map gets the same encoded frame: a hundred open maps
cost the database what one does. Two frames, in fact: the operators' exact one, and the
committee's, whose riders' pickup points are blurred (`blur_pickups`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import statistics
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import StreamingResponse

from bargaining import service as bargaining_service
from bargaining.exceptions import NoAgreementInForce
from coop.clock import current_time
from coop.dependencies import SessionDep
from coop.errors import Forbidden, dependency_down
from coop.outages import Outage
from coop.state import CoreState, state_of
from coop.tasks import TaskHandle
from dispatch.safety import alerts as safety_alerts
from dispatch.trips import figures
from server.web.pages import PageRoute, counted_viewer, load_viewer, require_signed_in
from server.web.rendering import Viewer

logger = logging.getLogger("coop.web.ops")

# How often an open stream checks that its viewer is still signed in (revoked tokens end it).
RECHECK_S = 30.0
KEEPALIVE_S = 15.0
# The committee sees where riders wait to about 100 m (0.001 degree of latitude is 111 m): enough
# to read demand, not to find a rider's door. Only the operators, who dispatch, see them exactly.
BLURRED_PICKUP_DECIMALS = 3


def blur_pickups(payload: dict[str, Any]) -> dict[str, Any]:
    """The frame for viewers who are not operators: every pickup point rounded to about 100 m
    (open requests, and the pickup end of each offer), and no SOS alarm; drivers' positions are
    unchanged."""
    digits = BLURRED_PICKUP_DECIMALS
    return {
        **{key: value for key, value in payload.items() if key != "safety"},
        "requests": [(round(lat, digits), round(lon, digits)) for lat, lon in payload["requests"]],
        "offers": [
            (dlat, dlon, round(plat, digits), round(plon, digits), *rest)
            for dlat, dlon, plat, plon, *rest in payload["offers"]
        ],
    }


def _event(payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload, separators=(",", ":"))
    return f"event: city\ndata: {data}\n\n".encode()


class OpsFeed:
    """The producer and its subscribers; lives as long as the app (see `running`)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.frame: bytes | None = None  # the operators' (exact)
        self.blurred_frame: bytes | None = None  # everyone else's (`blur_pickups`)
        self.sequence = 0
        self.subscribers = 0
        self.changed = asyncio.Condition()
        self.closing = False
        self._wanted = asyncio.Event()  # set while a map is open
        self._task: TaskHandle | None = None
        self._offers_since: datetime | None = None
        self._outage = Outage(logger, "the operations map")

    def start(self) -> None:
        self._task = state_of(self.app, CoreState).tasks.forever("ops-feed", self._run)

    def subscribe(self) -> None:
        self.subscribers += 1
        self._wanted.set()

    def unsubscribe(self) -> None:
        self.subscribers -= 1
        if self.subscribers <= 0:
            self._wanted.clear()

    async def _run(self) -> None:
        """Produces while a map is open, and waits (reading nothing) while none is."""
        while not self.closing:
            await self._wanted.wait()
            await self._produce()

    async def _interval_s(self, now: datetime, current_s: float) -> float:
        async with self.app.state.sessionmaker() as session:
            try:
                agreement = await bargaining_service.in_force(session=session, at=now)
            except NoAgreementInForce:  # a state, not a fault: the map still shows the city
                return current_s
        return agreement.terms.dispatch.batch_interval_ms / 1000

    async def _produce(self) -> None:
        interval_s = 2.0
        ticks = 0
        while self.subscribers > 0 and not self.closing:
            now = state_of(self.app, CoreState).clock()
            try:
                if ticks % 15 == 0:
                    interval_s = await self._interval_s(now, interval_s)
                payload = await self._snapshot(now, interval_s)
            except Exception as exc:
                dependency = dependency_down(exc)
                if dependency is None:
                    raise  # a bug: the runner logs it, records it, and starts the producer again
                self._outage.began(dependency, exc)  # the maps keep the last city meanwhile
                payload = None
            else:
                self._outage.ended()
            ticks += 1
            if payload is not None:
                async with self.changed:
                    self.frame = _event(payload)
                    self.blurred_frame = _event(blur_pickups(payload))
                    self.sequence += 1
                    self.changed.notify_all()
            await asyncio.sleep(interval_s)

    async def _snapshot(self, now: datetime, interval_s: float) -> dict[str, Any]:
        settings = self.app.state.settings
        since = self._offers_since or now - timedelta(seconds=interval_s)
        async with self.app.state.sessionmaker() as session:
            snapshot = await figures.map_snapshot(
                session=session, now=now, grace_s=settings.driver_grace_s, offers_since=since
            )
            alarm = await safety_alerts.alarm(session)
        if snapshot.last_offer_at is not None:
            self._offers_since = snapshot.last_offer_at
        elif self._offers_since is None:
            self._offers_since = since
        counts = [0, 0, 0, 0]
        for _, _, state in snapshot.drivers:
            counts[state] += 1
        etas = [offer[4] for offer in snapshot.offers]
        payload: dict[str, Any] = {
            "at": now.isoformat(),
            "interval_ms": round(interval_s * 1000),
            "drivers": snapshot.drivers,
            "requests": snapshot.requests,
            "offers": snapshot.offers,
            "counts": {
                "available": counts[0],
                "on_the_way": counts[1],
                "on_trip": counts[2],
                "not_taking_trips": counts[3],
                "open_requests": len(snapshot.requests),
                "offers": len(snapshot.offers),
                "median_pickup_eta_s": round(statistics.median(etas)) if etas else None,
            },
            # The operators' alarm: SOS alerts nobody acknowledged (dropped from the blurred frame).
            "safety": {
                "unacknowledged": alarm.unacknowledged,
                "oldest_at": None if alarm.oldest_at is None else alarm.oldest_at.isoformat(),
            },
        }
        return payload

    async def next_frame(
        self, after: int, timeout_s: float, *, exact: bool
    ) -> tuple[int, bytes | None]:
        """The next frame after `after`: the exact one for operators, else the blurred one."""
        async with self.changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.changed.wait_for(lambda: self.sequence > after or self.closing),
                    timeout_s,
                )
            if self.sequence > after:
                return self.sequence, self.frame if exact else self.blurred_frame
            return after, None

    async def close(self) -> None:
        self.closing = True
        async with self.changed:
            self.changed.notify_all()
        if self._task is not None:
            await self._task.stop()
            self._task = None


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    app.state.ops_feed = OpsFeed(app)
    app.state.ops_feed.start()
    try:
        yield
    finally:
        await app.state.ops_feed.close()


router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/ops/stream")
async def ops_stream(
    request: Request,
    viewer: Annotated[Viewer, Depends(counted_viewer)],
    session: SessionDep,
    now: Annotated[datetime, Depends(current_time)],
) -> StreamingResponse:
    """`text/event-stream`: one `city` event per batch, for the operators and the committee."""
    require_signed_in(viewer)
    if not viewer.sees_operations:
        raise Forbidden("The operations map is for operators and the bargaining committee")
    await session.close()  # the stream holds no database connection while it waits
    feed: OpsFeed = request.app.state.ops_feed
    exact = viewer.is_admin  # the operators dispatch; the committee reads demand, blurred

    async def events() -> AsyncIterator[bytes]:
        feed.subscribe()
        try:
            yield b"retry: 3000\n\n"
            seen = 0
            loop = asyncio.get_running_loop()
            recheck_at = loop.time() + RECHECK_S
            while not feed.closing:
                seen, frame = await feed.next_frame(seen, KEEPALIVE_S, exact=exact)
                yield frame if frame is not None else b": keepalive\n\n"
                if loop.time() >= recheck_at:
                    recheck_at = loop.time() + RECHECK_S
                    async with request.app.state.sessionmaker() as check:
                        still = await load_viewer(request, check)
                    if not still.sees_operations:
                        return
        finally:
            feed.unsubscribe()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
