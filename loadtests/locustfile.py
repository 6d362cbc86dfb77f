"""Locust load test: riders over HTTP and drivers over HTTP and WebSocket, as docs/protocol.md says.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 --headless -u 60 -r 10 -t 60s

Environment: COOP_ADMIN_TOKEN registers the drivers (the dev token by default);
COOP_LOAD_SPEEDUP (default 10) runs the drivers' clock faster so trips finish within a run;
COOP_SERVICE_AREA names the area's GeoJSON (Montréal by default). Riders and drivers come three to
one (`weight`), so `-u 60` is about 45 riders and 15 drivers. Expected refusals (an offer that
expired, a step after the rider cancelled) count as successes; anything else is a failure.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import secrets
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from locust import HttpUser, between, constant, task
from locust.exception import StopUser
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from coop.geo import ServiceArea
from coop.settings import DEV_ADMIN_TOKEN, PACKAGE_DIR
from server.simulator import registration
from server.simulator.city import busy_centre
from server.simulator.client import parse_frame, ws_url
from server.simulator.config import (
    SimulationConfig,
    accepts_offer,
    rating_for,
    rider_patience_s,
)
from server.simulator.movement import Car, Point, random_destination, random_point_near

ADMIN_TOKEN = os.environ.get("COOP_ADMIN_TOKEN") or DEV_ADMIN_TOKEN
SPEEDUP = float(os.environ.get("COOP_LOAD_SPEEDUP", "10"))
AREA = ServiceArea.from_file(
    Path(os.environ.get("COOP_SERVICE_AREA") or PACKAGE_DIR / "data" / "montreal.geojson")
)
# The service believes no move faster than the agreement's dispatch.max_plausible_speed_kmh (130
# in the founding agreement), timed in real seconds; simulated time runs SPEEDUP times faster, so
# the cars keep their real speed under half of it, as the simulator does.
PLAUSIBLE_KMH = float(os.environ.get("COOP_LOAD_PLAUSIBLE_KMH", "130"))
_MAX_SIM_MPS = 0.5 * PLAUSIBLE_KMH / 3.6 / SPEEDUP
CITY = SimulationConfig(
    speedup=SPEEDUP,
    trip_min_m=800,
    trip_max_m=4000,
    spread_m=3000,
    speed_min_mps=min(8.0, _MAX_SIM_MPS),
    speed_max_mps=min(12.0, _MAX_SIM_MPS),
)
CENTER = busy_centre(AREA, None)
RUN_ID = secrets.token_hex(3)  # member numbers differ between runs against the same database
_numbers = itertools.count(1)

TERMINAL = {"completed", "cancelled", "unfulfilled"}
RIDER_POLL_S = 2.0
RIDE_LIMIT_S = 600.0  # a rider gives up (cancelling if still allowed) after this long
BOARDING_S = 20.0  # sim seconds at the pickup before the trip starts
ALIGHTING_S = 10.0  # sim seconds at the dropoff before completing


def _position(value: dict[str, Any]) -> Point:
    return Point(float(value["lat"]), float(value["lon"]))


class RiderUser(HttpUser):
    """A rider: a quote, a request (Idempotency-Key), waiting, sometimes a cancel, a rating."""

    weight = 3
    wait_time = between(2, 8)

    def on_start(self) -> None:
        self.rng = random.Random()
        # With the admin token: exempt from the per-address sign-up limit (one address opens
        # every rider of the run).
        response = self.client.post(
            "/v1/riders",
            json={"name": f"Load rider {next(_numbers)}"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        if response.status_code != 201:
            raise StopUser()
        self.headers = {"Authorization": f"Bearer {response.json()['token']}"}

    @task
    def ride(self) -> None:
        pickup = random_point_near(self.rng, AREA, center=CENTER, spread_m=CITY.spread_m)
        dropoff = random_destination(
            self.rng, AREA, pickup, min_m=CITY.trip_min_m, max_m=CITY.trip_max_m
        )
        ask = {"pickup": pickup.to_wire(), "dropoff": dropoff.to_wire()}
        quoted = self.client.post("/v1/quotes", json=ask, headers=self.headers)
        if quoted.status_code != 200:
            return
        # The rider consents to the quote's maximum price (docs/jurisdiction.md).
        body = {**ask, "quote_id": quoted.json()["quote_id"]}
        key = {"Idempotency-Key": str(uuid.uuid4())}
        with self.client.post(
            "/v1/trips", json=body, headers={**self.headers, **key}, catch_response=True
        ) as response:
            if response.status_code not in {200, 201}:
                response.failure(f"{response.status_code} {response.text[:200]}")
                return
            trip_id = str(response.json()["id"])
        started = time.monotonic()
        patience = rider_patience_s(self.rng, CITY)
        status = "requested"
        while status not in TERMINAL:
            time.sleep(RIDER_POLL_S)
            waited = time.monotonic() - started
            impatient = patience is not None and waited >= CITY.real_s(patience)
            if (impatient or waited > RIDE_LIMIT_S) and status in {"requested", "assigned"}:
                status = self._cancel(trip_id) or status
                patience = None
                continue
            with self.client.get(
                f"/v1/trips/{trip_id}",
                headers=self.headers,
                name="/v1/trips/[id]",
                catch_response=True,
            ) as response:
                if response.status_code == 200:
                    status = str(response.json()["status"])
                else:
                    response.failure(f"{response.status_code} {response.text[:200]}")
            if waited > 2 * RIDE_LIMIT_S:
                return
        if status == "completed" and self.rng.random() < CITY.rating_rate:
            with self.client.post(
                f"/v1/trips/{trip_id}/rating",
                json=rating_for(self.rng),
                headers=self.headers,
                name="/v1/trips/[id]/rating",
                catch_response=True,
            ) as response:
                if response.status_code in {201, 404}:  # 404: no rating endpoint on this service
                    response.success()
                else:
                    response.failure(f"{response.status_code} {response.text[:200]}")

    def _cancel(self, trip_id: str) -> str | None:
        with self.client.post(
            f"/v1/trips/{trip_id}/cancel",
            json={"reason": "load test: plans changed"},
            headers=self.headers,
            name="/v1/trips/[id]/cancel",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                return str(response.json()["status"])
            if response.status_code == 409:  # it moved on meanwhile: not a failure
                response.success()
                return None
            response.failure(f"{response.status_code} {response.text[:200]}")
            return None


class DriverUser(HttpUser):
    """A driver: one WebSocket for availability, positions and pushes; HTTP for offers and steps."""

    weight = 1
    wait_time = constant(0)

    def on_start(self) -> None:
        self.rng = random.Random()
        number = next(_numbers)
        body = registration.driver_body(
            number,
            datetime.now(UTC).date(),
            name=f"Load driver {number}",
            member_number=f"LOAD-{RUN_ID}-{number:05d}",
            plate=f"LD {number:05d}",
        )
        response = self.client.post(
            "/v1/drivers", json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        if response.status_code != 201:
            raise StopUser()
        self.token = str(response.json()["token"])
        self.headers = {"Authorization": f"Bearer {self.token}"}
        start = random_point_near(self.rng, AREA, center=CENTER, spread_m=CITY.spread_m)
        speed = self.rng.uniform(CITY.speed_min_mps, CITY.speed_max_mps)
        self.car = Car(position=start, speed_mps=speed)
        self.trip: dict[str, Any] | None = None
        self.phase = "roaming"
        self.wait_until = 0.0
        self.last_tick = time.monotonic()
        self.ws: ClientConnection | None = None

    def on_stop(self) -> None:
        if self.ws is not None:
            try:
                self._send({"type": "availability", "available": False})
            except ConnectionClosed:
                pass
            self.ws.close()
            self.ws = None

    # --- the socket ---------------------------------------------------------------------------

    def _record(self, name: str, started: float, length: int, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type="WS",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=error,
            context={},
        )

    def _connect(self) -> None:
        started = time.perf_counter()
        try:
            self.ws = connect(
                ws_url(self.host or "", "/v1/ws/driver"),
                additional_headers=self.headers,
                compression=None,
                open_timeout=10,
                ping_interval=None,
            )
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            self._record("connect /v1/ws/driver", started, 0, exc)
            time.sleep(1)
            return
        self._record("connect /v1/ws/driver", started, 0, None)
        self._send({"type": "availability", "available": True})
        self._send_location(0.0)

    def _send(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        text = json.dumps(frame, separators=(",", ":"))
        started = time.perf_counter()
        self.ws.send(text)
        self._record(f"send {frame['type']}", started, len(text), None)

    def _send_location(self, speed_mps: float) -> None:
        if not AREA.contains(self.car.position.lat, self.car.position.lon):
            return  # a leg grazing the shore: the service would refuse it
        self._send(
            {
                "type": "location",
                **self.car.position.to_wire(),
                "heading": round(self.car.heading_deg, 1),
                "speed_mps": round(speed_mps, 2),
            }
        )

    @task
    def drive(self) -> None:
        """One tick: listen until the next location frame is due, move, report, take a step."""
        if self.ws is None:
            self._connect()
            return
        interval_s = CITY.frame_interval_s(busy=self.phase != "roaming")
        due = time.monotonic() + interval_s
        try:
            while (remaining := due - time.monotonic()) > 0:
                try:
                    raw = self.ws.recv(timeout=remaining)
                except TimeoutError:
                    break
                self._on_frame(raw)
            now = time.monotonic()
            sim_s = (now - self.last_tick) * SPEEDUP
            self.last_tick = now
            if self.phase == "roaming" and self.car.arrived:
                target = random_destination(
                    self.rng, AREA, self.car.position, min_m=500, max_m=2500
                )
                self.car.drive_to(target, area=AREA, grid_bearing_deg=CITY.grid_bearing_deg)
            moving = self.phase in {"roaming", "to_pickup", "on_trip"}
            covered_m = self.car.advance(sim_s) if moving else 0.0
            self._send_location(covered_m / sim_s if sim_s > 0 else 0.0)
            self._trip_step(now)
        except ConnectionClosed as exc:
            self._record("connection closed", time.perf_counter(), 0, exc)
            self.ws = None

    def _on_frame(self, raw: str | bytes) -> None:
        frame = parse_frame(raw)
        if frame is None:
            self._record("recv malformed", time.perf_counter(), len(raw), ValueError("not a frame"))
            return
        kind = frame["type"]
        self._record(f"recv {kind}", time.perf_counter(), len(raw), None)
        if kind == "offer":
            self._answer_offer(frame)
        elif kind == "trip" and isinstance(frame.get("trip"), dict):
            self._adopt(frame["trip"])
        elif kind == "ping":
            self._send({"type": "pong"})

    def _answer_offer(self, frame: dict[str, Any]) -> None:
        offer_id = frame["offer_id"]
        take = self.trip is None and accepts_offer(self.rng, CITY.decline_rate)
        verb = "accept" if take else "decline"
        with self.client.post(
            f"/v1/offers/{offer_id}/{verb}",
            headers=self.headers,
            name=f"/v1/offers/[id]/{verb}",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                if take:
                    self._adopt(response.json())
            elif response.status_code == 409:  # expired or withdrawn before the answer
                response.success()
            else:
                response.failure(f"{response.status_code} {response.text[:200]}")

    def _adopt(self, trip: dict[str, Any]) -> None:
        if self.trip is not None and str(self.trip["id"]) != str(trip["id"]):
            return
        status = str(trip["status"])
        if status in TERMINAL:
            self.trip, self.phase = None, "roaming"
            self.car.stop()
            return
        self.trip = trip
        if status == "assigned" and self.phase != "to_pickup":
            self.phase = "to_pickup"
            self.car.drive_to(
                _position(trip["pickup"]), area=AREA, grid_bearing_deg=CITY.grid_bearing_deg
            )
        elif status == "arrived" and self.phase != "boarding":
            self.phase = "boarding"
            self.car.stop()
            self.wait_until = time.monotonic() + CITY.real_s(BOARDING_S)
        elif status == "in_progress" and self.phase not in {"on_trip", "alighting"}:
            self.phase = "on_trip"
            self.car.drive_to(
                _position(trip["dropoff"]), area=AREA, grid_bearing_deg=CITY.grid_bearing_deg
            )

    def _trip_step(self, now: float) -> None:
        if self.trip is None:
            return
        if self.phase == "to_pickup" and self.car.arrived:
            self._step("arrived")
        elif self.phase == "boarding" and now >= self.wait_until:
            self._step("start")
        elif self.phase == "on_trip" and self.car.arrived:
            self.phase = "alighting"
            self.wait_until = now + max(CITY.real_s(ALIGHTING_S), CITY.frame_interval_s(busy=True))
        elif self.phase == "alighting" and now >= self.wait_until:
            self._step("complete")

    def _step(self, step: str) -> None:
        assert self.trip is not None
        trip_id = self.trip["id"]
        with self.client.post(
            f"/v1/trips/{trip_id}/{step}",
            headers=self.headers,
            name=f"/v1/trips/[id]/{step}",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                self._adopt(response.json())
                return
            if response.status_code != 409:
                response.failure(f"{response.status_code} {response.text[:200]}")
                return
            response.success()  # the rider cancelled meanwhile; catch up below
        current = self.client.get(
            f"/v1/trips/{trip_id}", headers=self.headers, name="/v1/trips/[id]"
        )
        if current.status_code == 200:
            self._adopt(current.json())
