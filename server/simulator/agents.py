"""The people of the simulated city: drivers (here) and riders (`riders.py`), each a few asyncio
tasks speaking docs/protocol.md over HTTP and WebSocket, exactly as the mobile apps would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from coop.geo import ServiceArea
from server.simulator.client import ServiceClient, parse_frame, send_frame
from server.simulator.config import (
    SimulationConfig,
    accepts_offer,
)
from server.simulator.curb import Curb
from server.simulator.movement import (
    Car,
    Point,
    distance_m,
    random_destination,
    random_point_near,
)
from server.simulator.stats import TERMINAL_STATUSES, CityStats

# Error frames that refuse one position and nothing else (docs/protocol.md, "Realtime").
LOCATION_REFUSALS = frozenset({"rate_limited", "implausible_position"})
# How long an app keeps to the report gap an `overloaded` frame asks for (docs/protocol.md).
OVERLOADED_HOLD_S = 10.0


class ReportPace:
    """Backpressure, the app's side: the report gap the service last asked for in an
    `overloaded` error frame, kept for OVERLOADED_HOLD_S after each ask."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.every_s = 0.0
        self.until = 0.0

    def asked(self, frame: dict[str, Any]) -> bool:
        """Takes an `overloaded` frame's ask; False (and nothing kept) when it carries none."""
        every_ms = frame.get("report_every_ms")
        if (
            frame.get("code") != "overloaded"
            or not isinstance(every_ms, int)
            or isinstance(every_ms, bool)
            or every_ms <= 0
        ):
            return False
        self.every_s = every_ms / 1000
        self.until = self.clock() + OVERLOADED_HOLD_S
        return True

    def gap_s(self, interval_s: float) -> float:
        """Seconds until the next location frame: the usual interval, or longer while asked."""
        return max(interval_s, self.every_s) if self.clock() < self.until else interval_s


logger = logging.getLogger("coop.simulator")

Clock = Callable[[], float]
Phase = Literal["roaming", "to_pickup", "boarding", "on_trip", "alighting"]
CONNECT_ERRORS = (OSError, TimeoutError, InvalidHandshake, InvalidURI)
ROAM_MIN_M = 500.0
ROAM_MAX_M = 2500.0
ALIGHTING_S = 10.0  # sim; the car stands at the dropoff, and its last position reaches the service
RIDER_POLL_S = 10.0  # real; a rider without news for this long asks for its trip


def position_of(value: dict[str, Any]) -> Point:
    return Point(float(value["lat"]), float(value["lon"]))


@dataclass
class Registered:
    """An account the simulator opened: its id and its only copy of the token."""

    id: str
    token: str


class Backoff:
    """Waits between reconnection attempts, doubling up to a ceiling."""

    def __init__(self, first_s: float = 0.5, ceiling_s: float = 10.0) -> None:
        self.first_s = first_s
        self.ceiling_s = ceiling_s
        self.next_s = first_s

    def reset(self) -> None:
        self.next_s = self.first_s

    def take(self) -> float:
        wait_s = self.next_s
        self.next_s = min(self.ceiling_s, self.next_s * 2)
        return wait_s


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleeps; answers True when the run is stopping (and wakes up at once for it)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    return stop.is_set()


async def run_until_first_done(*coroutines: Coroutine[Any, Any, Any]) -> None:
    """Runs the coroutines together until one returns or fails; cancels the others.

    A closed connection is how a session normally ends; any other failure is raised.
    """
    tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if task.cancelled():
            continue
        error = task.exception()
        if error is not None and not isinstance(error, ConnectionClosed):
            raise error


class SimDriver:
    """A member driving around the city: streams positions, takes offers, drives trips."""

    def __init__(
        self,
        *,
        number: int,
        account: Registered,
        client: ServiceClient,
        config: SimulationConfig,
        area: ServiceArea,
        center: Point,
        stats: CityStats,
        rng: random.Random,
        stop: asyncio.Event,
        clock: Clock = time.monotonic,
        curb: Curb | None = None,
    ) -> None:
        self.number = number
        self.curb = curb or Curb()
        self.account = account
        self.client = client
        self.config = config
        self.area = area
        self.center = center
        self.stats = stats
        self.rng = rng
        self.stop = stop
        self.clock = clock
        start = random_point_near(rng, area, center=center, spread_m=config.spread_m)
        self.car = Car(
            position=start, speed_mps=rng.uniform(config.speed_min_mps, config.speed_max_mps)
        )
        self.phase: Phase = "roaming"
        self.trip: dict[str, Any] | None = None
        self.wait_until: float | None = None
        self.deciding: dict[str, asyncio.Task[None]] = {}
        self.websocket: ClientConnection | None = None
        # Trips this driver completed: the pay watcher reads the statements of drivers who have.
        self.trips_completed = 0
        self.pace = ReportPace()

    @property
    def trip_id(self) -> str | None:
        return None if self.trip is None else str(self.trip["id"])

    async def run(self) -> None:
        """Stays connected (reconnecting after a drop) until the run stops."""
        backoff = Backoff()
        while not self.stop.is_set():
            try:
                websocket = await self.client.connect("/v1/ws/driver", self.account.token)
            except CONNECT_ERRORS as exc:
                logger.warning("driver %s could not connect: %s", self.number, exc)
                await sleep_or_stop(self.stop, backoff.take())
                continue
            backoff.reset()
            self.websocket = websocket
            online = False
            try:
                await self._send({"type": "availability", "available": True}, websocket=websocket)
                await self._send_location(websocket, speed_mps=0.0)
                online = True
                self.stats.drivers_online += 1
                await run_until_first_done(
                    self._receive(websocket), self._drive(websocket), self.stop.wait()
                )
                if self.stop.is_set():
                    with contextlib.suppress(ConnectionClosed):
                        await self._send({"type": "availability", "available": False})
            except ConnectionClosed as exc:
                logger.info("driver %s: connection closed (%s)", self.number, exc)
            finally:
                if online:
                    self.stats.drivers_online -= 1
                for task in self.deciding.values():
                    task.cancel()
                self.deciding.clear()
                self.websocket = None
                await websocket.close()
            if not self.stop.is_set():
                await sleep_or_stop(self.stop, backoff.take())

    async def _send(self, frame: dict[str, Any], websocket: ClientConnection | None = None) -> None:
        target = websocket or self.websocket
        if target is None:
            raise ConnectionClosed(None, None)
        await send_frame(target, frame)

    async def _send_location(self, websocket: ClientConnection, *, speed_mps: float) -> None:
        if not self.area.contains(self.car.position.lat, self.car.position.lon):
            return  # a leg grazing the shore: the service would refuse it; the next one counts
        position = self.car.position.to_wire()
        await self._send(
            {
                "type": "location",
                **position,
                "ts": datetime.now(UTC).isoformat(),
                "heading": round(self.car.heading_deg, 1),
                "speed_mps": round(speed_mps, 2),
            },
            websocket=websocket,
        )
        self.stats.location_frames += 1

    # --- what the service sends -----------------------------------------------------------

    async def _receive(self, websocket: ClientConnection) -> None:
        async for raw in websocket:
            frame = parse_frame(raw)
            if frame is None:
                logger.warning("driver %s got a frame that is not JSON with a type", self.number)
                continue
            self.client.received("driver", frame)
            kind = frame["type"]
            if kind == "offer":
                self._on_offer(frame)
            elif kind == "offer_withdrawn":
                task = self.deciding.pop(str(frame.get("offer_id")), None)
                if task is not None:
                    task.cancel()
            elif kind == "trip" and isinstance(frame.get("trip"), dict):
                self._adopt(frame["trip"])
            elif kind == "ping":
                await self._send({"type": "pong"}, websocket=websocket)
            elif kind == "error" and frame.get("code") == "overloaded":
                if self.pace.asked(frame):
                    logger.info(
                        "driver %s: asked to report every %s ms",
                        self.number,
                        frame["report_every_ms"],
                    )
            elif kind == "error" and frame.get("code") in LOCATION_REFUSALS:
                self.stats.location_refusals += 1
                logger.info("driver %s: a position was refused: %s", self.number, frame)
            elif kind == "error":
                self.stats.error_frames += 1
                logger.warning("driver %s got an error frame: %s", self.number, frame)

    def _on_offer(self, frame: dict[str, Any]) -> None:
        offer_id = str(frame["offer_id"])
        self.stats.offer_received(str(frame["trip_id"]), self.clock())
        if offer_id in self.deciding:
            return
        task = asyncio.create_task(self._decide(offer_id))
        self.deciding[offer_id] = task
        task.add_done_callback(lambda _: self.deciding.pop(offer_id, None))

    async def _decide(self, offer_id: str) -> None:
        think_s = self.rng.uniform(self.config.think_min_s, self.config.think_max_s)
        await asyncio.sleep(self.config.real_s(think_s))
        busy = self.trip is not None
        if busy or not accepts_offer(self.rng, self.config.decline_rate):
            response = await self.client.call(
                "POST", f"/v1/offers/{offer_id}/decline", token=self.account.token
            )
            if response is not None and response.status_code == 200:
                self.stats.offers_declined += 1
            return
        response = await self.client.call(
            "POST", f"/v1/offers/{offer_id}/accept", token=self.account.token
        )
        if response is None:
            return
        if response.status_code == 200:
            self.stats.offers_accepted += 1
            self._hold(None)  # the answer is the trip to adopt, whatever came before
            self._adopt(response.json())
        elif response.status_code == 409:
            self.stats.offers_missed += 1
        elif response.status_code < 500:  # a 5xx is already counted and logged
            logger.warning(
                "driver %s: accept answered %s %s", self.number, response.status_code, response.text
            )

    def _adopt(self, trip: dict[str, Any]) -> None:
        """Follows the trip's status as the service tells it (after a step, a push, a reconnect)."""
        trip_id = str(trip["id"])
        if self.trip is not None and self.trip_id != trip_id:
            return  # news of an earlier trip
        status = str(trip["status"])
        if status in TERMINAL_STATUSES:
            self._hold(None)
            self.phase = "roaming"
            self.wait_until = None
            self.car.stop()
            return
        self._hold(trip)
        pickup, dropoff = position_of(trip["pickup"]), position_of(trip["dropoff"])
        if status == "assigned" and self.phase != "to_pickup":
            self.phase = "to_pickup"
            self._drive_to(pickup)
        elif status == "arrived" and self.phase != "boarding":
            self.phase = "boarding"
            self.car.stop()
            boarding_s = self.rng.uniform(self.config.boarding_min_s, self.config.boarding_max_s)
            self.wait_until = self.clock() + self.config.real_s(boarding_s)
        elif status == "in_progress" and self.phase not in {"on_trip", "alighting"}:
            self.phase = "on_trip"
            self._drive_to(dropoff)

    def _hold(self, trip: dict[str, Any] | None) -> None:
        """Sets the driver's current trip, keeping the count of drivers on a trip."""
        self.stats.drivers_on_trip += (trip is not None) - (self.trip is not None)
        self.trip = trip

    def _drive_to(self, point: Point) -> None:
        self.car.drive_to(point, area=self.area, grid_bearing_deg=self.config.grid_bearing_deg)

    # --- driving ----------------------------------------------------------------------------

    async def _drive(self, websocket: ClientConnection) -> None:
        last = self.clock()
        while True:
            interval_s = self.config.frame_interval_s(busy=self.phase != "roaming")
            await asyncio.sleep(self.pace.gap_s(interval_s))
            now = self.clock()
            sim_s = (now - last) * self.config.speedup
            last = now
            if self.phase == "roaming" and self.car.arrived:
                self._roam()
            covered_m = (
                self.car.advance(sim_s)
                if self.phase in {"roaming", "to_pickup", "on_trip"}
                else 0.0
            )
            await self._send_location(websocket, speed_mps=covered_m / sim_s if sim_s > 0 else 0.0)
            await self._trip_step(now)

    def _roam(self) -> None:
        # Mostly short hops around where the car is; now and then back towards the busy centre.
        if (
            self.rng.random() < 0.3
            or distance_m(self.car.position, self.center) > 3 * self.config.spread_m
        ):
            target = random_point_near(
                self.rng, self.area, center=self.center, spread_m=self.config.spread_m
            )
        else:
            target = random_destination(
                self.rng, self.area, self.car.position, min_m=ROAM_MIN_M, max_m=ROAM_MAX_M
            )
        self._drive_to(target)

    async def _trip_step(self, now: float) -> None:
        trip_id = self.trip_id
        if trip_id is None:
            return
        if self.phase == "to_pickup" and self.car.arrived:
            await self._transition(trip_id, "arrived")
        elif self.phase == "boarding" and self.wait_until is not None and now >= self.wait_until:
            await self._start(trip_id)
        elif self.phase == "on_trip" and self.car.arrived:
            self.phase = "alighting"
            self.wait_until = now + max(
                self.config.real_s(ALIGHTING_S), self.config.frame_interval_s(busy=True)
            )
        elif self.phase == "alighting" and self.wait_until is not None and now >= self.wait_until:
            if await self._transition(trip_id, "complete"):
                self.trips_completed += 1

    async def _start(self, trip_id: str) -> None:
        """Starts the ride, with the rider's PIN when the trip asks for one: the driver asks,
        the rider says it (the curb); a rider who has not yet is asked again at the next step."""
        if self.trip is None or not self.trip.get("pin_required"):
            await self._transition(trip_id, "start")
            return
        pin = self.curb.ask(trip_id)
        if pin is None:
            return
        if await self._transition(trip_id, "start", body={"pin": pin}):
            self.stats.pins_given += 1
            self.curb.forget(trip_id)

    async def _transition(
        self, trip_id: str, step: str, body: dict[str, Any] | None = None
    ) -> bool:
        """POSTs a trip step; on a refusal, catches up with the trip's real status."""
        response = await self.client.call(
            "POST", f"/v1/trips/{trip_id}/{step}", token=self.account.token, body=body
        )
        if response is None or response.status_code >= 500:
            return False  # tried again at the next step
        if response.status_code == 200:
            self._adopt(response.json())
            return True
        logger.info(
            "driver %s: %s of trip %s answered %s %s",
            self.number,
            step,
            trip_id,
            response.status_code,
            response.text,
        )
        current = await self.client.call("GET", f"/v1/trips/{trip_id}", token=self.account.token)
        if current is not None and current.status_code == 200:
            self._adopt(current.json())
        elif current is not None and current.status_code in {403, 404}:
            self._adopt({"id": trip_id, "status": "cancelled"})  # no longer ours
        return False
