"""Something for the demo's people to act on: before the simulated city starts, each demo
driver-member drives one short real trip for a rider, over the same protocol as the apps
(socket, offer, accept, arrived, start, positions, complete); the riders rate them, and one
member appeals the low rating, so /review has an appeal waiting for the demo reviewer, /me shows
ratings, a score's explanation and a pay statement, and the riders have receipts. A rider
raises one SOS, so the operator finds an alert on /safety and the alarm on /ops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from devtools.demo_accounts import DemoAccount
from server.simulator.client import bearer, ws_url

# Where each member waits, in central Montréal, and the way their rider goes (~400 m).
SPOTS = ((45.5048, -73.5698), (45.5170, -73.5800), (45.4960, -73.5790))
HEADING_DEG = 40.0
TRIP_M = 400.0
STEP_M = 10.0  # a position every half second: 72 km/h at most, believable to the meter
STEP_S = 0.5
OFFER_WAIT_S = 20.0
# What each member's rider says of the trip (stars, tags, comment) and whether they appeal.
RATINGS: tuple[tuple[int, list[str], str | None, str | None], ...] = (
    (5, ["friendly", "smooth_driving"], "Lovely ride, thank you!", None),
    (
        2,
        ["wrong_route"],
        "Took a long way round.",
        "Rue Sherbrooke was closed for works; the app sent me around the block.",
    ),
    (3, ["traffic"], None, None),
)
EXTRA_RIDERS = ("Omar Benali", "Chloé Martin")


@dataclass
class Seeded:
    trips: int = 0
    ratings: int = 0
    appeals: int = 0
    sos: int = 0


def _ahead(lat: float, lon: float, metres: float) -> tuple[float, float]:
    heading = math.radians(HEADING_DEG)
    return (
        lat + metres * math.cos(heading) / 111_000,
        lon + metres * math.sin(heading) / (111_000 * math.cos(math.radians(lat))),
    )


class Car:
    """A demo member's socket and position."""

    def __init__(self, websocket: ClientConnection, lat: float, lon: float) -> None:
        self.websocket = websocket
        self.lat, self.lon = lat, lon
        self.offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(self, frame: dict[str, Any]) -> None:
        await self.websocket.send(json.dumps(frame, separators=(",", ":")))

    async def report(self) -> None:
        await self.send(
            {
                "type": "location",
                "lat": round(self.lat, 6),
                "lon": round(self.lon, 6),
                "ts": datetime.now(UTC).isoformat(),
            }
        )

    async def listen(self) -> None:
        async for raw in self.websocket:
            with contextlib.suppress(ValueError):
                frame = json.loads(raw)
                if frame.get("type") == "offer":
                    await self.offers.put(frame)
                elif frame.get("type") == "ping":
                    await self.send({"type": "pong"})

    async def drive_to(self, lat: float, lon: float) -> None:
        while True:
            dy = (lat - self.lat) * 111_000
            dx = (lon - self.lon) * 111_000 * math.cos(math.radians(self.lat))
            distance = math.hypot(dx, dy)
            if distance < 1:
                return
            share = min(1.0, STEP_M / distance)
            self.lat += (lat - self.lat) * share
            self.lon += (lon - self.lon) * share
            await asyncio.sleep(STEP_S)
            await self.report()


async def _step(http: httpx.AsyncClient, token: str, trip_id: str, step: str) -> None:
    """A trip step, retried while the service has not yet taken in the last position."""
    for _ in range(20):
        response = await http.post(f"/v1/trips/{trip_id}/{step}", headers=bearer(token))
        if response.status_code == 200:
            return
        if response.status_code != 409:
            break
        await asyncio.sleep(0.5)
    response.raise_for_status()
    raise httpx.HTTPError(f"{step}: {response.status_code} {response.text}")


async def _drive_one(
    http: httpx.AsyncClient, base_url: str, member: DemoAccount, spot: tuple[float, float]
) -> dict[str, Any]:
    """The member goes online at `spot`, takes the offer they get, drives it and goes off duty;
    answers the trip as completed."""
    async with connect(
        ws_url(base_url, "/v1/ws/driver"),
        additional_headers=bearer(member.token),
        ping_interval=None,
        open_timeout=10,
    ) as websocket:
        car = Car(websocket, *spot)
        listening = asyncio.create_task(car.listen())
        try:
            await car.report()
            await car.send({"type": "availability", "available": True})
            offer = await asyncio.wait_for(car.offers.get(), OFFER_WAIT_S)
            accepted = await http.post(
                f"/v1/offers/{offer['offer_id']}/accept", headers=bearer(member.token)
            )
            accepted.raise_for_status()
            trip = accepted.json()
            await car.drive_to(trip["pickup"]["lat"], trip["pickup"]["lon"])
            await car.report()
            await _step(http, member.token, trip["id"], "arrived")
            await _step(http, member.token, trip["id"], "start")
            await car.drive_to(trip["dropoff"]["lat"], trip["dropoff"]["lon"])
            await asyncio.sleep(STEP_S)
            await _step(http, member.token, trip["id"], "complete")
            await car.send({"type": "availability", "available": False})
            return dict(trip)
        finally:
            listening.cancel()


async def _seed(base_url: str, accounts: list[DemoAccount], timeout_s: float) -> Seeded:
    members = [a for a in accounts if a.role == "driver-member"][: len(SPOTS)]
    seeded = Seeded()
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s) as http:
        riders = [a.token for a in accounts if a.role == "rider"]
        for name in EXTRA_RIDERS:
            response = await http.post("/v1/riders", json={"name": name})
            response.raise_for_status()
            riders.append(response.json()["token"])
        driving = [
            asyncio.create_task(_drive_one(http, base_url, member, spot))
            for member, spot in zip(members, SPOTS, strict=False)
        ]
        await asyncio.sleep(1.0)  # the members are online before anyone asks for a ride
        trips: list[str] = []
        for token, spot in zip(riders, SPOTS, strict=False):
            pickup = {"lat": spot[0] + 0.0004, "lon": spot[1]}
            lat, lon = _ahead(pickup["lat"], pickup["lon"], TRIP_M)
            ask = {"pickup": pickup, "dropoff": {"lat": lat, "lon": lon}}
            quoted = await http.post("/v1/quotes", json=ask, headers=bearer(token))
            quoted.raise_for_status()
            response = await http.post(
                "/v1/trips",
                json={**ask, "quote_id": quoted.json()["quote_id"]},
                headers=bearer(token),
            )
            response.raise_for_status()
            trips.append(response.json()["id"])
        done = await asyncio.gather(*driving)
        seeded.trips = len(done)
        by_rider = dict(zip(trips, riders, strict=True))
        for member, trip in zip(members, done, strict=True):
            number = members.index(member)
            stars, tags, comment, statement = RATINGS[number % len(RATINGS)]
            rider = by_rider[trip["id"]]
            rating = await http.post(
                f"/v1/trips/{trip['id']}/rating",
                json={"stars": stars, "tags": tags, **({"comment": comment} if comment else {})},
                headers=bearer(rider),
            )
            rating.raise_for_status()
            seeded.ratings += 1
            if statement is not None:
                appeal = await http.post(
                    f"/v1/ratings/{rating.json()['id']}/appeal",
                    json={"statement": statement},
                    headers=bearer(member.token),
                )
                appeal.raise_for_status()
                seeded.appeals += 1
        # One rider's SOS, so the operator finds an alert on /safety (and the alarm on /ops).
        lat, lon = SPOTS[0]
        sos = await http.post(
            "/v1/sos",
            json={"lat": lat, "lon": lon, "detail": "Demo alert: a car has been following me."},
            headers=bearer(riders[-1]),
        )
        sos.raise_for_status()
        seeded.sos += 1
    return seeded


def seed_demo_history(
    base_url: str, accounts: list[DemoAccount], *, timeout_s: float = 90.0
) -> str:
    """Runs the demo members' trips, ratings and appeal; answers a line saying what was made
    (or why not: the demo goes on without it)."""
    try:
        seeded = asyncio.run(asyncio.wait_for(_seed(base_url, accounts, 10.0), timeout_s))
    except (httpx.HTTPError, WebSocketException, OSError, TimeoutError, ValueError) as exc:
        return f"demo: the members' first trips could not be made ({type(exc).__name__}: {exc})"
    return (
        f"demo: {seeded.trips} members drove a first trip; {seeded.ratings} ratings, "
        f"{seeded.appeals} appeal waiting at /review; {seeded.sos} SOS waiting at /safety"
    )
