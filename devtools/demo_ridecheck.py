"""The demo's ride check (docs/demo.md, "A ride check"): one driver-member takes the demo rider
on a short trip and parks halfway, reporting the same spot, until the ride check has asked both
parties "Everything OK?", nobody answered, and the check went to the operators as an alert
(/safety, and the alarm on /ops); then the car drives on and completes the trip.

The ride check counts real seconds (the demo's speed-up is the meter's, not the ride check's),
so the stop lasts the agreement's `safety.stop_alert_s` (founding 300 s) plus its
`check_answer_s` (120 s): the car parks in a thread of its own while the city runs. Over the
same protocol as the apps: the driver's socket, the HTTP trip steps, and the operators' list of
alerts (the demo's admin token) to see that the alert is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from devtools import demo_seed
from devtools.demo_accounts import DemoAccount
from devtools.demo_seed import SPOTS, Car, _ahead, _step
from server.simulator.client import bearer, ws_url

# The trip: from where the last member's first trip ended (demo_seed), where the car waits,
# 800 m along the demo's heading; the car parks at its middle, far from both ends, so only the
# stop can ask.
TRIP_M = 800.0
PARK_AT_M = 400.0
# While parked: a position this often (a phone on a dashboard keeps reporting), and the
# operators' list read this often for the alert.
PARK_REPORT_S = 5.0
POLL_S = 5.0
# The founding stop_alert_s (300) and check_answer_s (120), the sweep's 5 s, and room for a busy
# machine; past it the car drives on and the demo says the check was not seen.
PARK_LIMIT_S = 720.0
OFFER_WAIT_S = 20.0


@dataclass
class RideCheckRun:
    """What the parked car saw; `says` is the line for the person running the demo."""

    trip_id: str | None = None
    asked: dict[str, Any] | None = None
    alert: dict[str, Any] | None = None
    completed: bool = False
    problems: list[str] = field(default_factory=list)

    def says(self) -> str:
        if self.alert is not None:
            return (
                "demo: the ride check fired on the parked trip (nobody answered): its alert "
                "waits at /safety and sounds on /ops"
            )
        return "demo: the ride check was not seen (" + ("; ".join(self.problems) or "?") + ")"


class ParkedCar(Car):
    """A demo member's car that also hears the ride check's question."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.questions: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def listen(self) -> None:
        async for raw in self.websocket:
            with contextlib.suppress(ValueError):
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "offer":
                    await self.offers.put(frame)
                elif kind == "safety_check":
                    await self.questions.put(frame)
                elif kind == "ping":
                    await self.send({"type": "pong"})


async def _alert_for(http: httpx.AsyncClient, admin_token: str, trip_id: str) -> Any:
    """The trip's ride-check alert in the operators' queue, or None yet."""
    answer = await http.get(
        "/v1/safety/alerts",
        params={"status": "open", "kind": "alerts", "limit": 200},
        headers=bearer(admin_token),
    )
    answer.raise_for_status()
    for alert in answer.json():
        if alert["trip_id"] == trip_id and alert["kind"] == "ride_check":
            return alert
    return None


async def _request(http: httpx.AsyncClient, rider_token: str, spot: tuple[float, float]) -> str:
    pickup = {"lat": spot[0] + 0.0002, "lon": spot[1]}  # where the car waits
    lat, lon = _ahead(pickup["lat"], pickup["lon"], TRIP_M)
    ask = {"pickup": pickup, "dropoff": {"lat": lat, "lon": lon}}
    quoted = await http.post("/v1/quotes", json=ask, headers=bearer(rider_token))
    quoted.raise_for_status()
    response = await http.post(
        "/v1/trips",
        json={**ask, "quote_id": quoted.json()["quote_id"]},
        headers=bearer(rider_token),
    )
    response.raise_for_status()
    trip_id: str = response.json()["id"]
    return trip_id


async def park_mid_trip(
    base_url: str,
    *,
    member: DemoAccount,
    rider: DemoAccount,
    admin_token: str,
    parked: Callable[[], None] = lambda: None,
    report_every_s: float = PARK_REPORT_S,
    poll_every_s: float = POLL_S,
    limit_s: float = PARK_LIMIT_S,
) -> RideCheckRun:
    """Drives `rider` with `member` to the middle of a trip, calls `parked` once the car has
    stopped there, and stays until the trip's ride-check alert is in the operators' queue (or
    `limit_s` of real time passed); then completes the trip."""
    run = RideCheckRun()
    # Where the member's first trip left the car: no jump the service would not believe.
    spot = _ahead(SPOTS[-1][0] + 0.0004, SPOTS[-1][1], demo_seed.TRIP_M)
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=10.0) as http,
        connect(
            ws_url(base_url, "/v1/ws/driver"),
            additional_headers=bearer(member.token),
            ping_interval=None,
            open_timeout=10,
        ) as websocket,
    ):
        car = ParkedCar(websocket, *spot)
        listening = asyncio.create_task(car.listen())
        try:
            await car.report()
            await car.send({"type": "availability", "available": True})
            await asyncio.sleep(0.5)  # online before the rider asks
            run.trip_id = trip_id = await _request(http, rider.token, spot)
            offer = await asyncio.wait_for(car.offers.get(), OFFER_WAIT_S)
            accepted = await http.post(
                f"/v1/offers/{offer['offer_id']}/accept", headers=bearer(member.token)
            )
            accepted.raise_for_status()
            trip = accepted.json()
            await car.drive_to(trip["pickup"]["lat"], trip["pickup"]["lon"])
            await car.report()
            await _step(http, member.token, trip_id, "arrived")
            await _step(http, member.token, trip_id, "start")
            await car.drive_to(*_ahead(trip["pickup"]["lat"], trip["pickup"]["lon"], PARK_AT_M))
            parked()
            run.alert = await _wait_parked(
                http, car, run, admin_token, trip_id, report_every_s, poll_every_s, limit_s
            )
            await car.drive_to(trip["dropoff"]["lat"], trip["dropoff"]["lon"])
            await asyncio.sleep(0.5)
            await _step(http, member.token, trip_id, "complete")
            run.completed = True
            await car.send({"type": "availability", "available": False})
        finally:
            listening.cancel()
    return run


async def _wait_parked(
    http: httpx.AsyncClient,
    car: ParkedCar,
    run: RideCheckRun,
    admin_token: str,
    trip_id: str,
    report_every_s: float,
    poll_every_s: float,
    limit_s: float,
) -> Any:
    """Stands still, reporting the spot, until the alert is queued; the question is heard and
    left unanswered (the demo's point: nobody answered, so a person is told)."""
    until = time.monotonic() + limit_s
    next_poll = time.monotonic()
    while time.monotonic() < until:
        with contextlib.suppress(asyncio.QueueEmpty):
            run.asked = car.questions.get_nowait()
        if time.monotonic() >= next_poll:
            alert = await _alert_for(http, admin_token, trip_id)
            if alert is not None:
                return alert
            next_poll = time.monotonic() + poll_every_s
        await car.report()
        await asyncio.sleep(report_every_s)
    run.problems.append(
        f"no alert after {limit_s:g} s parked" + ("" if run.asked else ", nobody was asked")
    )
    return None


def start_ride_check(
    base_url: str, accounts: list[DemoAccount], admin_token: str, *, parked_within_s: float = 60.0
) -> str:
    """Starts the parked trip in a thread of its own (the city runs meanwhile) and answers, once
    the car is parked, the line saying when the check will fire; the thread prints the outcome.
    The demo goes on without it when it cannot start."""
    members = [a for a in accounts if a.role == "driver-member"]
    riders = [a for a in accounts if a.role == "rider"]
    if not members or not riders:
        return "demo: no ride check (no driver-member or rider account)"
    is_parked, ended = threading.Event(), threading.Event()

    def drive() -> None:
        try:
            run = asyncio.run(
                park_mid_trip(
                    base_url,
                    member=members[-1],
                    rider=riders[0],
                    admin_token=admin_token,
                    parked=is_parked.set,
                )
            )
            print(run.says(), flush=True)
        except (httpx.HTTPError, WebSocketException, OSError, TimeoutError, ValueError) as exc:
            print(f"demo: the ride check's trip stopped ({type(exc).__name__}: {exc})", flush=True)
        finally:
            ended.set()

    threading.Thread(target=drive, name="demo-ride-check", daemon=True).start()
    deadline = time.monotonic() + parked_within_s
    while not is_parked.is_set() and not ended.is_set() and time.monotonic() < deadline:
        is_parked.wait(0.2)
    if not is_parked.is_set():
        return "demo: no ride check this run (its car did not park)"
    return (
        f"demo: {members[-1].name} parked mid-trip with {riders[0].name} at "
        f"{time.strftime('%H:%M:%S')}: the ride check asks both in about 5 minutes, and "
        "unanswered it goes to /safety and /ops 2 minutes later"
    )
