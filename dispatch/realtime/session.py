"""One WebSocket, from handshake to close: authentication, current state, and three loops.

The receive loop handles what the client sends, the send loop drains the connection's bounded
queue, and the ping loop sends a `ping` frame and (for a driver) renews their presence. When
any of them ends (the client left, the queue overflowed, the server stops), the others stop too.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi import WebSocket

from coop import jurisdiction, pubsub
from coop.auth import Principal, Role, websocket_principal
from coop.errors import (
    Forbidden,
    ProblemError,
    RateLimited,
    Unauthorized,
    dependency_down,
    dependency_response,
    problem_response,
)
from coop.frames import Frame
from coop.ratelimit import SocketCapUnavailable, SocketSlots, new_connection_id
from coop.state import state_of
from dispatch.locations import service as locations_service
from dispatch.locations.ingest import (
    AVAILABILITY_BURST,
    GAP_SPREAD,
    MIN_REPORT_INTERVAL,
    REPORT_BURST,
    SHED_GAP_TOLERANCE,
    Intake,
    QueueClock,
    Take,
    stamped_at,
)
from dispatch.matching import capacity
from dispatch.realtime import frames, ridecheck_socket, sos
from dispatch.realtime.frames import (
    AvailabilityFrame,
    BadFrame,
    HelloFrame,
    LocationFrame,
    PingFrame,
    PongFrame,
)
from dispatch.realtime.hub import CLOSE_REPLACED, CLOSE_TOKEN_REVOKED, Connection
from dispatch.realtime.live_location import driver_location
from dispatch.realtime.state import DispatchState
from dispatch.states import DRIVER_OPEN
from dispatch.trips import push
from dispatch.trips import service as trips_service
from drivers import qualifications
from drivers.frames import qualification_frame
from drivers.models import Driver
from riders.models import Rider

logger = logging.getLogger("coop.realtime")

CLOSE_TIMEOUT_S = 5.0
# A report stamped further ahead than this is refused: a wrong clock must not block later ones.
MAX_FUTURE_TS = timedelta(seconds=60)
PING = PingFrame(type="ping").encode()
PONG = PongFrame(type="pong").encode()
# While the server sheds location frames, a driver socket that sends one hears so (with the
# gap it asks for) at most this often: within the 10 s an app keeps an ask, and not more often,
# since telling every socket is itself work for an overloaded worker (at 16,000 sockets, every
# 5 s was 3,200 frames a second).
OVERLOADED_NOTICE_S = 8.0
# A driver socket that keeps sending location frames faster than it was asked (this many shed
# within the gap in the last IGNORED_ASK_WINDOW_S, the last ask at least IGNORED_ASK_GRACE_S
# old) is closed with 1013 (try again later): reading its frames is itself what overloads the
# worker, and dropping them after reading cannot stop that. An app that heeds the ask never
# comes near it: it is told again at once whenever the gap changes, and loses at most the
# frames it had in flight then.
IGNORED_ASK_SHEDS = 6
IGNORED_ASK_WINDOW_S = 10.0
IGNORED_ASK_GRACE_S = 2.0
CLOSE_TRY_AGAIN_LATER = 1013


class SocketSession:
    """Serves one rider or driver socket."""

    def __init__(self, websocket: WebSocket, role: Role) -> None:
        state = state_of(websocket.app, DispatchState)
        self._state = state  # its clock is read at each use: a test may install another
        self.websocket = websocket
        self.role = role
        self.settings = state.settings
        self.hub = state.hub
        self.ingest = state.locations
        self.sessionmaker = state.sessionmaker
        self.area = state.service_area
        self.redis = state.redis
        self.receipts = state.receipts
        self.subject_id: uuid.UUID | None = None
        self.principal: Principal | None = None
        self.slots: SocketSlots = state.socket_slots
        self.client_gone = False
        self._last_ts: datetime | None = None
        self._last_taken = 0.0  # when this socket's last location frame was taken (monotonic)
        self._told_overloaded = -OVERLOADED_NOTICE_S
        self._told_gap_s = 0.0
        # This socket's share of the gap backpressure asks for (ingest.GAP_SPREAD).
        self._gap_spread = random.uniform(1 - GAP_SPREAD, 1 + GAP_SPREAD)
        self._shed_at: collections.deque[float] = collections.deque()
        self._queue_clock = QueueClock()
        self._last_stale_stamp = -math.inf  # the `ts` of this socket's last stale frame

    def _now(self) -> datetime:
        return self._state.clock()

    def _failed(self, exc: Exception, message: str, *args: object) -> None:
        """The one rule: PostgreSQL or Redis away is an outage, logged once for every socket of
        the process (`Hub.outage`); anything else is a bug, logged with its traceback."""
        dependency = dependency_down(exc)
        if dependency is None:
            logger.error(message, *args, exc_info=(type(exc), exc, exc.__traceback__))
        else:
            self.hub.outage.began(dependency, exc)

    # --- handshake ---------------------------------------------------------------------------

    async def _deny(self, problem: ProblemError) -> None:
        await self.websocket.send_denial_response(problem.response())

    async def _authenticate(self) -> bool:
        async with self.sessionmaker() as session:
            principal = await websocket_principal(self.websocket, session)
            if principal is None:
                await self._deny(
                    Unauthorized(
                        "Send 'Authorization: Bearer <token>' or '?token=' with a valid token"
                    )
                )
                return False
            if principal.role is not self.role:
                await self._deny(Forbidden(f"This socket is for {self.role.value} accounts"))
                return False
            assert principal.subject_id is not None
            try:
                await state_of(self.websocket.app, DispatchState).rate_limits.check_api(
                    principal.account
                )
            except RateLimited as limited:
                await self._deny(limited)
                return False
            model: type[Driver] | type[Rider] = Driver if self.role is Role.driver else Rider
            if await session.get(model, principal.subject_id) is None:
                await self._deny(Unauthorized("The account no longer exists"))
                return False
            self.subject_id = principal.subject_id
            self.principal = principal
        return True

    @property
    def channel(self) -> str:
        assert self.subject_id is not None
        if self.role is Role.driver:
            return pubsub.driver_channel(self.subject_id)
        return pubsub.rider_channel(self.subject_id)

    async def run(self) -> None:
        if not self.hub.connected:
            # Without Redis no frame could reach this socket: refuse the upgrade, like HTTP.
            await self.websocket.send_denial_response(dependency_response("redis"))
            return
        try:
            authenticated = await self._authenticate()
        except Exception as exc:
            dependency = dependency_down(exc)
            if dependency is None:
                logger.exception("authenticating a %s socket failed", self.role.value)
                await self.websocket.send_denial_response(
                    problem_response(
                        500, "internal_error", "Internal error", "Something went wrong on our side"
                    )
                )
            else:
                self.hub.outage.began(dependency, exc)  # once per outage, not once per socket
                await self.websocket.send_denial_response(dependency_response(dependency))
            return
        if not authenticated:
            return
        assert self.subject_id is not None and self.principal is not None
        await self.websocket.accept()
        connection = Connection(
            queue_size=self.settings.ws_send_queue_size,
            label=f"{self.role.value}:{self.subject_id}",
            connection_id=new_connection_id(),
            token_key=self.principal.token_key,
        )
        # Subscribed (and confirmed by Redis) before the state is read: nothing falls between.
        await self.hub.register(self.channel, connection)
        account = self.principal.account
        expiry: asyncio.TimerHandle | None = None
        try:
            # At most COOP_WS_MAX_PER_ACCOUNT open: this one takes the place of the oldest.
            try:
                evicted_ids = await self.slots.claim(account, connection.id)
            except SocketCapUnavailable as unavailable:
                # Not counted, not kept: a burst of handshakes must not exceed the cap.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self.websocket.close(
                            CLOSE_TRY_AGAIN_LATER,
                            f"socket limit not checked ({unavailable}); reconnect",
                        ),
                        CLOSE_TIMEOUT_S,
                    )
                return
            for evicted in evicted_ids:
                await pubsub.close_connection(
                    self.redis,
                    evicted,
                    code=CLOSE_REPLACED,
                    reason="replaced by a newer connection of this account",
                )
            if self.principal.expires_at is not None:
                left_s = self.principal.seconds_left()
                expiry = asyncio.get_running_loop().call_later(
                    max(0.0, left_s), connection.shut, CLOSE_TOKEN_REVOKED, "token expired"
                )
            if self.role is Role.driver:
                self.ingest.touch(self.subject_id, self._now())
            try:
                state = await self._current_state()
            except Exception as exc:  # the database away: the client retries its connect
                self._failed(exc, "loading the state of %s failed", connection.label)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self.websocket.close(1011, "could not load your state; reconnect"),
                        CLOSE_TIMEOUT_S,
                    )
                return
            self.hub.outage.ended()
            connection.release(state)
            await self._pump(connection)
        finally:
            if expiry is not None:
                expiry.cancel()
            await self.hub.unregister(self.channel, connection)
            await self.slots.release(account, connection.id)

    async def _current_state(self) -> list[str]:
        """What a client gets at once on (re)connect: a hello, and its open trip or offer."""
        assert self.subject_id is not None
        available: bool | None = None  # a driver's only
        state: list[Frame] = []
        async with self.sessionmaker() as session:
            if self.role is Role.driver:
                presence = await locations_service.presence(
                    session=session, driver_id=self.subject_id
                )
                available = bool(presence and presence.available)
                if (
                    presence is not None
                    and presence.position is not None
                    and presence.reported_at is not None
                ):
                    # A reconnect continues from the stored position: no free jump.
                    self.ingest.seed(
                        self.subject_id,
                        presence.position.lat,
                        presence.position.lon,
                        presence.reported_at,
                    )
                # The law's qualification: what is missing or lapses soon, told on connecting.
                profile = jurisdiction.load(self.settings.jurisdiction)
                standing = await qualifications.standing(
                    session=session, profile=profile, driver_id=self.subject_id, now=self._now()
                )
                told = qualification_frame(standing, profile.expiry_warnings_days)
                if told is not None:
                    state.append(told)
                trip = await trips_service.open_trip_of_driver(
                    session=session, driver_id=self.subject_id
                )
                if trip is not None:
                    views = await trips_service.views(session=session, trip=trip)
                    state.append(push.trip_frame(views.driver))
                else:
                    pending = await trips_service.pending_offer_of_driver(
                        session=session, driver_id=self.subject_id, now=self._now()
                    )
                    if pending is not None:
                        state.append(push.offer_frame(*pending))
            else:
                trip = await trips_service.open_trip_of_rider(
                    session=session, rider_id=self.subject_id
                )
                if trip is not None:
                    views = await trips_service.views(session=session, trip=trip)
                    state.append(push.trip_frame(views.rider))
                    if trip.driver_id is not None and trip.status in DRIVER_OPEN:
                        presence = await locations_service.presence(
                            session=session, driver_id=trip.driver_id
                        )
                        if presence is not None and presence.position is not None:
                            where = presence.position
                            travel = self._state.matcher.travel
                            now = self._now()
                            state.append(driver_location(trip, where.lat, where.lon, travel, now))
        hello = HelloFrame(
            type="hello",
            role="driver" if self.role is Role.driver else "rider",
            id=self.subject_id,
            ping_interval_s=self.settings.ws_ping_interval_s,
            available=available,
        )
        state += await ridecheck_socket.waiting(self._state, self.principal)  # unanswered checks
        return [frame.encode() for frame in [hello, *state]]

    # --- the loops ---------------------------------------------------------------------------

    async def _pump(self, connection: Connection) -> None:
        # Two tasks and a timer per socket, and the connection's closing as a plain future: at
        # 10,000 sockets every task (with the coroutine it keeps) is memory and garbage-collector
        # work (docs/performance.md, "Connections").
        tasks: list[asyncio.Future[None]] = [
            asyncio.create_task(self._receive_loop(connection)),
            asyncio.create_task(self._send_loop(connection)),
        ]
        stop_pings = self._start_pings(connection)
        try:
            done, _ = await asyncio.wait(
                [*tasks, connection.closed()], return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop_pings()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                logger.error("socket %s failed", connection.label, exc_info=task.exception())
                connection.shut(1011, "internal error; reconnect")
        if not self.client_gone:
            connection.shut(1000, "closing")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.websocket.close(connection.close_code, connection.close_reason),
                    CLOSE_TIMEOUT_S,
                )

    async def _send_loop(self, connection: Connection) -> None:
        driver = self.role is Role.driver
        while True:
            text = await connection.queue.get()
            try:
                await self.websocket.send_text(text)
            except Exception:  # the client is gone; the receive loop sees it too
                self.client_gone = True
                return
            if driver:
                self.receipts.sent(text)  # an offer counts as delivered once written

    def _start_pings(self, connection: Connection) -> Callable[[], None]:
        """Every `COOP_WS_PING_INTERVAL_S`, from a timer: a ping frame, and for a driver the
        renewal of their presence. Answers the function that stops it."""
        loop = asyncio.get_running_loop()
        interval_s = self.settings.ws_ping_interval_s
        handle: asyncio.TimerHandle | None = None

        def ping() -> None:
            nonlocal handle
            try:
                connection.push(PING)
                if self.role is Role.driver:
                    assert self.subject_id is not None
                    self.ingest.touch(self.subject_id, self._now())
            except Exception:
                logger.exception("pinging %s failed", connection.label)
                connection.shut(1011, "internal error; reconnect")
                return
            handle = loop.call_later(interval_s, ping)

        handle = loop.call_later(interval_s, ping)

        def stop() -> None:
            if handle is not None:
                handle.cancel()

        return stop

    async def _receive_loop(self, connection: Connection) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                self.client_gone = True
                return
            raw = message.get("text")
            if raw is None:
                connection.push(
                    frames.error("bad_message", "Frames are JSON text, not binary").encode()
                )
                continue
            if self.role is Role.driver and "location" in raw:
                # Backpressure: while flushes or reading fall behind, a busy driver's reports
                # are shed before any parsing, so the event loop gets back to the flush; and
                # every driver socket that reports is asked to report less often, so the frames
                # stop costing the reading at all. A frame that waited too long before it was read
                # (its `ts` against the socket's usual) is dropped while shedding: a newer one
                # follows. What it says of the worker's delay counts only once it is parsed and
                # admitted (`_report`): this frame may be anything that contains "location".
                now = time.monotonic()
                stamp = stamped_at(raw)
                queued_s = None
                if stamp is not None:
                    queued_s = self._queue_clock.queued_s(stamp, time.time())
                take = self.ingest.takes(self._last_taken, now, queued_s, self._gap_spread)
                gap_s = self.ingest.gap_for(self._gap_spread)
                if gap_s > 0.0 and (
                    gap_s != self._told_gap_s or now - self._told_overloaded >= OVERLOADED_NOTICE_S
                ):
                    self._told_overloaded, self._told_gap_s = now, gap_s
                    connection.push(frames.overloaded(round(gap_s * 1000)).encode())
                if take is Take.stale and self._sent_apart(stamp):
                    continue  # sent before the worker caught up: not the app's fault
                if take is not Take.taken:  # shed, or stale frames stamped closer than allowed
                    self._shed_at.append(now)
                    while self._shed_at[0] < now - IGNORED_ASK_WINDOW_S:
                        self._shed_at.popleft()
                    if (
                        len(self._shed_at) >= IGNORED_ASK_SHEDS
                        and now - self._told_overloaded >= IGNORED_ASK_GRACE_S
                    ):
                        self.ingest.sockets_closed_for_ignoring += 1
                        connection.shut(
                            CLOSE_TRY_AGAIN_LATER,
                            f"report at most every {round(gap_s * 1000)} ms; reconnect later",
                        )
                        return
                    continue
                self._last_taken = now
            limit = self.settings.ws_max_frame_bytes
            if len(raw) > limit or len(raw.encode("utf-8")) > limit:
                connection.push(
                    frames.error(
                        "bad_message",
                        f"A frame is at most {self.settings.ws_max_frame_bytes} bytes",
                    ).encode()
                )
                continue
            try:
                await self._handle(raw, connection)
            except BadFrame as bad:
                error = frames.error(bad.code, bad.message)
                if bad.place is not None:
                    error = error.model_copy(update={"place": bad.place})
                connection.push(error.encode())
            except Exception as exc:  # the database away: say so, keep the socket
                self._failed(exc, "handling a frame on %s failed", connection.label)
                connection.push(
                    frames.error(
                        "unavailable", "The server could not handle this frame; send it again"
                    ).encode()
                )

    def _sent_apart(self, stamp: float | None) -> bool:
        """Whether a stale frame stamped `stamp` was sent within the protocol's pace after the
        socket's last stale one (by their stamps, which is when the app sent them): an app's
        backlog is, and is not held against it; frames stamped closer together than any app
        may send them count as sent faster than asked."""
        if stamp is None:
            return True
        last, self._last_stale_stamp = self._last_stale_stamp, stamp
        return stamp - last >= MIN_REPORT_INTERVAL.total_seconds() * SHED_GAP_TOLERANCE

    # --- what clients send -------------------------------------------------------------------

    async def _handle(self, raw: str, connection: Connection) -> None:
        if self.role is Role.rider:
            frame: Any = frames.parse_rider(raw)
        else:
            frame = frames.parse_driver(raw)
        if isinstance(frame, PingFrame):
            connection.push(PONG)
        elif isinstance(frame, AvailabilityFrame):
            await self._set_availability(frame, connection)
        elif isinstance(frame, LocationFrame):
            self._report(frame)
        elif isinstance(frame, frames.SafetyCheckAnswerFrame):  # the ride check's question
            connection.push(await ridecheck_socket.answered(self._state, self.principal, frame))
        elif frame.type in sos.FRAME_TYPES:
            await sos.handle(frame, self.sessionmaker, self.principal, self._now, connection.push)
        # A pong needs nothing: the socket being open is what keeps a driver present.

    def _report(self, frame: LocationFrame) -> None:
        assert self.subject_id is not None
        now = self._now()
        if not self.ingest.admit(self.subject_id, now):
            raise BadFrame(
                f"At most one location frame per 100 ms on average ({REPORT_BURST} at once); "
                "this one was dropped",
                code="rate_limited",
            )
        if not self.area.contains(frame.lat, frame.lon):
            raise BadFrame(
                f"The position ({frame.lat}, {frame.lon}) is outside the service area "
                f"'{self.area.name}'",
                code="out_of_service_area",
            )
        if frame.ts is not None:
            if frame.ts > now + MAX_FUTURE_TS:
                raise BadFrame("Bad location frame: ts is in the future; check the clock")
            if self._last_ts is not None and frame.ts < self._last_ts:
                return  # an older report arriving late: the newer one stands
            self._last_ts = frame.ts
            # Parsed and admitted: what it waited now tells the worker's reading delay, this
            # socket's once however often it sends (admission.ReadingDelay).
            queued_s = self._queue_clock.queued_s(frame.ts.timestamp(), time.time())
            self.ingest.note_queued(id(self), queued_s, time.monotonic())
        intake = self.ingest.receive(
            self.subject_id,
            lat=frame.lat,
            lon=frame.lon,
            heading_deg=frame.heading,
            speed_mps=frame.speed_mps,
            received_at=now,
        )
        if intake is Intake.implausible:
            raise BadFrame(
                f"The position ({frame.lat}, {frame.lon}) implies a move faster than "
                f"{self.ingest.max_plausible_speed_kmh:g} km/h (the agreement's "
                "dispatch.max_plausible_speed_kmh) since your last position; it was not used",
                code="implausible_position",
            )

    async def _set_availability(self, frame: AvailabilityFrame, connection: Connection) -> None:
        assert self.subject_id is not None
        now = self._now()
        if not self.ingest.admit_availability(self.subject_id, now):
            raise BadFrame(
                "At most one availability frame a second on average "
                f"({AVAILABILITY_BURST} at once); "
                "this one was dropped",
                code="rate_limited",
            )
        cap = capacity.cap_of(self.settings)
        grace_s = self.settings.driver_grace_s
        admitted: list[uuid.UUID] = []
        async with self.sessionmaker() as session:
            withdrawn: list[trips_service.ClosedOffer] = []
            if frame.available:
                # Under the authorization's cap of cars in service, or in line for a place.
                admission = await capacity.go_available(
                    session=session, driver_id=self.subject_id, cap=cap, now=now, grace_s=grace_s
                )
            else:
                await locations_service.set_availability(
                    session=session,
                    driver_id=self.subject_id,
                    available=False,
                    now=now,
                    grace_s=grace_s,
                )
                await capacity.leave_line(session=session, driver_id=self.subject_id)
                # Off duty: an offer still open goes to someone else at the next batch.
                withdrawn = await trips_service.withdraw_offers_of_driver(
                    session=session, driver_id=self.subject_id, now=now
                )
                # A car left: the next in line, if any, takes its place.
                admitted = await capacity.admit_waiting(
                    session=session, cap=cap, now=now, grace_s=grace_s
                )
            await session.commit()
        for driver_id in admitted:
            await capacity.tell_admitted(self.redis, driver_id)
        if frame.available and not admission.admitted:
            assert admission.place is not None and cap is not None
            raise BadFrame(
                frames.capacity_reached(admission.place, cap).message,
                code="service_capacity_reached",
                place=admission.place,
            )
        self.hub.outage.ended()
        for closed in withdrawn:
            await push.offer_withdrawn(
                self.redis,
                driver_id=closed.driver_id,
                offer_id=closed.offer_id,
                reason=closed.reason,
            )
        # The echo confirms the change is recorded (and everything sent before it handled).
        connection.push(AvailabilityFrame(type="availability", available=frame.available).encode())
