"""The riders of the simulated city: each opens an account, asks for a quote, consents to it,
follows the trip over its socket and rates it, speaking docs/protocol.md as a rider app would."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from typing import Any

from websockets.exceptions import ConnectionClosed

from coop.geo import ServiceArea
from server.simulator.agents import CONNECT_ERRORS, RIDER_POLL_S, Backoff, Clock, sleep_or_stop
from server.simulator.client import ServiceClient, parse_frame, send_frame
from server.simulator.config import SimulationConfig, rating_for, rider_patience_s
from server.simulator.curb import Curb
from server.simulator.movement import Point, random_destination, random_point_near
from server.simulator.stats import TERMINAL_STATUSES, CityStats

logger = logging.getLogger("coop.simulator")


class SimRider:
    """One rider: opens an account, asks for a quote, requests a trip, follows it, rates it."""

    def __init__(
        self,
        *,
        number: int,
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
        self.client = client
        self.config = config
        self.area = area
        self.center = center
        self.stats = stats
        self.rng = rng
        self.stop = stop
        self.clock = clock
        self.token = ""
        self.trip_id: str | None = None
        self.status: str | None = None
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.shares = False  # whether this rider shares their trip (config.trip_share)
        self.shared = False
        self._sharing: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """The rider's whole journey; ends when the trip ends or the run stops."""
        # Opened with the admin token, exempt from the per-address sign-up limit: the whole
        # city's riders come from one address.
        created = await self.client.call(
            "POST",
            "/v1/riders",
            token=self.config.admin_token,
            body={"name": f"Simulated rider {self.number}"},
        )
        if created is None or created.status_code != 201:
            self.stats.requests_failed += 1
            return
        self.token = str(created.json()["token"])
        if self.rng.random() < self.config.pin_share:
            await self._ask_for_a_pin()
        self.shares = self.rng.random() < self.config.trip_share
        listener = asyncio.create_task(self._listen())
        try:
            await self._ride()
        finally:
            listener.cancel()
            tasks = [listener] if self._sharing is None else [listener, self._sharing]
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _listen(self) -> None:
        """Keeps the rider's socket open and queues what arrives (reconnecting after a drop)."""
        backoff = Backoff()
        while True:
            try:
                async with await self.client.connect("/v1/ws/rider", self.token) as websocket:
                    backoff.reset()
                    async for raw in websocket:
                        frame = parse_frame(raw)
                        if frame is None:
                            logger.warning("rider %s got a frame without a type", self.number)
                            continue
                        self.client.received("rider", frame)
                        if frame["type"] == "ping":
                            await send_frame(websocket, {"type": "pong"})
                        elif frame["type"] == "error":
                            self.stats.error_frames += 1
                            logger.warning("rider %s got an error frame: %s", self.number, frame)
                        else:
                            self.frames.put_nowait(frame)
            except (ConnectionClosed, *CONNECT_ERRORS) as exc:
                logger.info("rider %s: socket closed (%s)", self.number, exc)
            await asyncio.sleep(backoff.take())

    def _trip_request(self) -> dict[str, Any]:
        pickup = random_point_near(
            self.rng, self.area, center=self.center, spread_m=self.config.spread_m
        )
        dropoff = random_destination(
            self.rng,
            self.area,
            pickup,
            min_m=self.config.trip_min_m,
            max_m=self.config.trip_max_m,
        )
        return {
            "pickup": pickup.to_wire(),
            "dropoff": dropoff.to_wire(),
            "wheelchair_accessible": self.rng.random() < self.config.wheelchair_share,
        }

    async def _ride(self) -> None:
        ask = self._trip_request()
        quoted = await self.client.call("POST", "/v1/quotes", token=self.token, body=ask)
        if quoted is None or quoted.status_code != 200:
            self.stats.requests_failed += 1
            return
        # The rider accepts the maximum price shown (docs/jurisdiction.md): its quote's id is
        # their consent.
        request = {**ask, "quote_id": quoted.json()["quote_id"]}
        # The key makes a retry after a lost answer safe: the service returns the same trip.
        key = str(uuid.uuid4())
        requested_at = self.clock()
        response = None
        for attempt in range(3):
            response = await self.client.call(
                "POST",
                "/v1/trips",
                token=self.token,
                body=request,
                headers={"Idempotency-Key": key},
            )
            if response is not None and response.status_code < 500:
                break
            if await sleep_or_stop(self.stop, 0.5 * (attempt + 1)):
                return
        if response is None or response.status_code not in {200, 201}:
            self.stats.requests_failed += 1
            if response is not None and response.status_code < 500:
                logger.warning(
                    "rider %s: trip request answered %s %s",
                    self.number,
                    response.status_code,
                    response.text,
                )
            return
        trip = response.json()
        self.trip_id = str(trip["id"])
        self.stats.requests_sent += 1
        self.stats.trip_requested(self.trip_id, requested_at)
        self._see(str(trip["status"]))
        patience_s = rider_patience_s(self.rng, self.config)
        cancel_at = None if patience_s is None else requested_at + self.config.real_s(patience_s)
        await self._follow(cancel_at)
        if self.status == "completed" and self.rng.random() < self.config.rating_rate:
            await self._rate()

    async def _ask_for_a_pin(self) -> None:
        """Chooses the PIN at every pickup, as a rider does once in the app's settings."""
        response = await self.client.call(
            "PATCH", "/v1/riders/me", token=self.token, body={"safety": {"pin": "always"}}
        )
        if response is not None and response.status_code == 200:
            self.stats.pin_riders += 1
        elif response is not None and response.status_code < 500:
            logger.warning(
                "rider %s: PIN choice answered %s %s",
                self.number,
                response.status_code,
                response.text,
            )

    def _see(self, status: str, trip: dict[str, Any] | None = None) -> None:
        self.status = status
        assert self.trip_id is not None
        self.stats.trip_status(self.trip_id, status)
        if status == "assigned" and self.shares and not self.shared:
            # Like a rider who sends the link to someone at home, who opens it once.
            self.shared = True
            self._sharing = asyncio.create_task(self._share(self.trip_id))
        pin = None if trip is None else trip.get("pin")
        if isinstance(pin, str):
            self.curb.tell(self.trip_id, pin)  # said to the driver who came, when they ask
        elif status in TERMINAL_STATUSES or status == "in_progress":
            self.curb.forget(self.trip_id)

    async def _share(self, trip_id: str) -> None:
        made = await self.client.call("POST", f"/v1/trips/{trip_id}/share", token=self.token)
        if made is None or made.status_code != 201:
            return  # the trip moved on meanwhile (over), or the service refused: not shared
        self.stats.trips_shared += 1
        opened = await self.client.call("GET", f"/v1/shared/{made.json()['token']}", token=None)
        if opened is not None and opened.status_code == 200:
            self.stats.shares_opened += 1

    async def _follow(self, cancel_at: float | None) -> None:
        assert self.trip_id is not None
        while self.status not in TERMINAL_STATUSES and not self.stop.is_set():
            wait_s = RIDER_POLL_S
            if cancel_at is not None:
                wait_s = min(wait_s, max(0.0, cancel_at - self.clock()))
            frame = await self._next_frame(wait_s)
            if frame is not None:
                self._on_frame(frame)
                continue
            if cancel_at is not None and self.clock() >= cancel_at:
                cancel_at = None
                if self.status in {"requested", "assigned"}:
                    await self._cancel()
                    continue
            await self._poll()

    async def _next_frame(self, timeout_s: float) -> dict[str, Any] | None:
        getter = asyncio.create_task(self.frames.get())
        stopper = asyncio.create_task(self.stop.wait())
        try:
            done, _ = await asyncio.wait(
                {getter, stopper}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stopper.cancel()
            if not getter.done():
                getter.cancel()
        if getter in done:
            return getter.result()
        return None

    def _on_frame(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "trip" and isinstance(frame.get("trip"), dict):
            trip = frame["trip"]
            if str(trip.get("id")) == self.trip_id:
                self._see(str(trip["status"]), trip)
        elif frame["type"] == "driver_location":
            self.stats.driver_location_frames += 1

    async def _poll(self) -> None:
        response = await self.client.call("GET", f"/v1/trips/{self.trip_id}", token=self.token)
        if response is not None and response.status_code == 200:
            self._see(str(response.json()["status"]), response.json())

    async def _cancel(self) -> None:
        response = await self.client.call(
            "POST",
            f"/v1/trips/{self.trip_id}/cancel",
            token=self.token,
            body={"reason": "plans changed"},
        )
        if response is None:
            return
        if response.status_code == 200:
            self.stats.cancels_sent += 1
            self._see(str(response.json()["status"]))
        elif response.status_code == 409:
            await self._poll()  # it moved on (or ended) meanwhile

    async def _rate(self) -> None:
        response = await self.client.call(
            "POST", f"/v1/trips/{self.trip_id}/rating", token=self.token, body=rating_for(self.rng)
        )
        if response is None:
            return
        if response.status_code == 201:
            self.stats.ratings_sent += 1
        elif response.status_code < 500:
            logger.warning(
                "rider %s: rating answered %s %s", self.number, response.status_code, response.text
            )
