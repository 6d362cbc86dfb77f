"""Builders for test data, through the public API so every test exercises the real path."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from httpx import AsyncClient

from coop.settings import Settings
from server.app import create_app
from server.simulator import registration

_member_numbers = itertools.count(1000)

DOWNTOWN = {"lat": 45.5017, "lon": -73.5673}
PLATEAU = {"lat": 45.5225, "lon": -73.5800}


def north(metres: float, east_m: float = 0.0) -> dict[str, float]:
    """A point `metres` due north (and `east_m` east) of DOWNTOWN (a degree of latitude is
    about 111.2 km; of longitude, that times the cosine of the latitude)."""
    return {
        "lat": DOWNTOWN["lat"] + metres / 111_195,
        "lon": DOWNTOWN["lon"] + east_m / (111_195 * 0.7003),
    }


LONGUEUIL = {"lat": 45.5312, "lon": -73.5181}  # across the river: outside the service area


@dataclass(frozen=True)
class Account:
    id: uuid.UUID
    token: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_rider(client: AsyncClient, name: str = "Rosa Rider") -> Account:
    response = await client.post("/v1/riders", json={"name": name})
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(id=uuid.UUID(body["id"]), token=body["token"])


async def make_driver(
    client: AsyncClient,
    admin_headers: dict[str, str],
    *,
    name: str = "Dana Driver",
    member_number: str | None = None,
    committee: bool = False,
    reviewer: bool = False,
    wheelchair_accessible: bool = False,
    seats: int = 4,
    qualified: bool = True,
) -> Account:
    """A member with a car; `qualified` (the default), with the facts the jurisdiction's law
    requires recorded, so they are offered trips (docs/jurisdiction.md)."""
    serial = next(_member_numbers)
    number = member_number or f"M-{serial}-{uuid.uuid4().hex[:6]}"
    payload: dict[str, Any] = {
        "name": name,
        "member_number": number,
        "committee": committee,
        "reviewer": reviewer,
        "vehicle": {
            "plate": "FXK 123",
            "seats": seats,
            "wheelchair_accessible": wheelchair_accessible,
        },
    }
    if qualified:
        today = local_today()
        payload["vehicle"] = registration.vehicle(
            serial,
            today,
            plate="FXK 123",
            owner=name,
            seats=seats,
            wheelchair_accessible=wheelchair_accessible,
        )
        payload["qualification"] = registration.qualification(serial, today)
    response = await client.post("/v1/drivers", json=payload, headers=admin_headers)
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(id=uuid.UUID(body["id"]), token=body["token"], extra={"member_number": number})


@asynccontextmanager
async def live_server(app: FastAPI, *, startup_timeout_s: float = 30.0) -> AsyncIterator[str]:
    """Serves `app` with uvicorn on a free port of 127.0.0.1 in this event loop; answers the base
    URL. Real sockets: for WebSocket clients and anything else that needs a real server."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="on",
        log_config=None,
        ws_per_message_deflate=False,
        ws_max_size=app.state.settings.ws_transport_max_bytes,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + startup_timeout_s
    while not server.started:
        if serving.done():
            serving.result()  # raises what stopped the start-up
            raise RuntimeError("the server stopped during start-up")
        if asyncio.get_running_loop().time() > deadline:
            server.should_exit = True
            await serving
            raise TimeoutError(f"the server did not start within {startup_timeout_s} s")
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


class SocketClient:
    """A WebSocket client for tests: sends frames, and waits (with a timeout) for the next frame
    of a given type, keeping every frame it read in `seen`. Pings are answered (and skipped
    unless waited for). Every frame's `seq` is checked to follow the last one, and taken off
    the frame (`last_seq` keeps it)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.seen: list[dict[str, Any]] = []
        self._unread: list[dict[str, Any]] = []
        self.last_seq = 0

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.connection.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def _read(self, timeout_s: float) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.recv(), timeout_s)
        frame: dict[str, Any] = json.loads(raw)
        seq = frame.pop("seq", None)
        assert seq == self.last_seq + 1, f"frame {frame} has seq {seq} after {self.last_seq}"
        self.last_seq = seq
        self.seen.append(frame)
        if frame.get("type") == "ping":
            await self.send({"type": "pong"})
        return frame

    async def next(self, type_: str, *, timeout_s: float = 5.0, **match: Any) -> dict[str, Any]:
        """The next unread frame of `type_` (whose fields equal `match`); others stay unread."""

        def wanted(frame: dict[str, Any]) -> bool:
            return frame["type"] == type_ and all(frame.get(k) == v for k, v in match.items())

        return await self._next(wanted, f"{type_!r} frame", timeout_s)

    async def trip(self, status: str, *, timeout_s: float = 5.0) -> dict[str, Any]:
        """The next `trip` frame whose trip has `status`; answers the trip."""

        def wanted(frame: dict[str, Any]) -> bool:
            return frame["type"] == "trip" and bool(frame["trip"]["status"] == status)

        return dict((await self._next(wanted, f"trip frame ({status})", timeout_s))["trip"])

    async def _next(
        self, wanted: Callable[[dict[str, Any]], bool], what: str, timeout_s: float
    ) -> dict[str, Any]:
        for index, frame in enumerate(self._unread):
            if wanted(frame):
                return self._unread.pop(index)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no {what} within {timeout_s} s; unread: {self._unread}")
            try:
                frame = await self._read(left)
            except TimeoutError:
                continue
            if wanted(frame):
                return frame
            if frame["type"] != "ping":  # pings are answered and otherwise ignored
                self._unread.append(frame)

    async def nothing(self, type_: str, *, within_s: float = 0.3) -> None:
        """Asserts no frame of `type_` is pending (what already arrived, plus a short wait)."""
        try:
            frame = await self.next(type_, timeout_s=within_s)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {type_} frame: {frame}")

    async def close(self) -> None:
        await self.connection.close()


@asynccontextmanager
async def socket(base_url: str, path: str, token: str) -> AsyncIterator[SocketClient]:
    """A connected SocketClient, after the server's `hello` frame (so it is subscribed)."""
    from websockets.asyncio.client import connect

    url = base_url.replace("http://", "ws://", 1) + path
    async with connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
        open_timeout=10,
        ping_interval=None,
    ) as connection:
        client = SocketClient(connection)
        await client.next("hello")
        yield client


async def go_online(driver_socket: SocketClient, position: dict[str, float]) -> None:
    """Reports a position and goes available; returns once the server has recorded both (the
    availability echo comes after the position was taken in). Flush positions to make them
    visible to the matcher."""
    await driver_socket.send({"type": "location", **position})
    await driver_socket.send({"type": "availability", "available": True})
    await driver_socket.next("availability", available=True)


async def place_driver(
    app: FastAPI,
    driver_id: uuid.UUID,
    position: dict[str, float],
    *,
    available: bool = True,
) -> None:
    """Puts a driver on the map without a socket: present, at `position`, available or not."""
    from coop.db import utcnow
    from dispatch.locations import service as locations_service

    async with app.state.sessionmaker() as session:
        await locations_service.set_availability(
            session=session,
            driver_id=driver_id,
            available=available,
            now=utcnow(),
            grace_s=app.state.settings.driver_grace_s,
        )
        await session.commit()
    app.state.locations.report(
        driver_id,
        lat=position["lat"],
        lon=position["lon"],
        heading_deg=None,
        speed_mps=None,
        received_at=utcnow(),
    )
    await app.state.locations.flush()


async def request_trip(
    client: AsyncClient,
    rider: Account,
    *,
    pickup: dict[str, float] = DOWNTOWN,
    dropoff: dict[str, float] = PLATEAU,
    wheelchair_accessible: bool = False,
) -> dict[str, Any]:
    body = await consented(
        client,
        rider,
        {"pickup": pickup, "dropoff": dropoff, "wheelchair_accessible": wheelchair_accessible},
    )
    response = await client.post("/v1/trips", json=body, headers=rider.headers)
    assert response.status_code == 201, response.text
    trip: dict[str, Any] = response.json()
    return trip


async def consented(client: AsyncClient, rider: Account, ask: dict[str, Any]) -> dict[str, Any]:
    """The body of a trip request for `ask` with the rider's consent: a fresh quote's id, as an
    app sends it once the rider accepted the maximum price (docs/jurisdiction.md)."""
    quoted = await client.post("/v1/quotes", json=ask, headers=rider.headers)
    assert quoted.status_code == 200, quoted.text
    return {**ask, "quote_id": quoted.json()["quote_id"]}


async def offer_to(app: FastAPI, driver: Account) -> uuid.UUID:
    """Runs a matching batch; answers the id of the offer it made to `driver`."""
    report = await app.state.matcher.run_batch()
    for offer in report.offers:
        if offer.driver_id == driver.id:
            offer_id: uuid.UUID = offer.id
            return offer_id
    raise AssertionError(f"the batch made no offer to driver {driver.id}: {report}")


async def assigned_trip(
    app: FastAPI,
    client: AsyncClient,
    rider: Account,
    driver: Account,
    *,
    at: dict[str, float] = DOWNTOWN,
) -> dict[str, Any]:
    """A trip of `rider` that `driver` accepted (the driver placed at `at`)."""
    trip = await request_trip(client, rider)
    await place_driver(app, driver.id, at)
    offer_id = await offer_to(app, driver)
    response = await client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == trip["id"]
    accepted: dict[str, Any] = response.json()
    return accepted


async def accepted_over_socket(
    app: FastAPI,
    client: AsyncClient,
    driver_socket: SocketClient,
    rider: Account,
    driver: Account,
    *,
    at: dict[str, float],
    pickup: dict[str, float] = DOWNTOWN,
) -> dict[str, Any]:
    """A trip of `rider` that `driver`, gone online over `driver_socket` at `at`, was offered
    and accepted: the trip as requested."""
    await go_online(driver_socket, at)
    trip = await request_trip(client, rider, pickup=pickup)
    await app.state.locations.flush()
    offer_id = await offer_to(app, driver)
    accepted = await client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
    assert accepted.status_code == 200, accepted.text
    return trip


@asynccontextmanager
async def flushing_server(settings: Settings) -> AsyncIterator[tuple[str, Any]]:
    """A live service whose position buffer is flushed every 50 ms, as `serve` flushes it:
    its base URL and its ingest."""
    app = create_app(settings)
    async with live_server(app) as base_url:
        ingest = app.state.locations
        flusher = asyncio.create_task(ingest.run(0.05))
        try:
            yield base_url, ingest
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)


class Collector:
    """Reads every frame of a socket while the test sends (a flood's answers must be read, or
    the server closes a client that reads too slowly)."""

    def __init__(self, client: SocketClient) -> None:
        self.client = client
        self.frames: list[dict[str, Any]] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            frame = json.loads(await self.client.connection.recv())
            self.frames.append(frame)
            if frame["type"] == "ping":
                await self.client.send({"type": "pong"})

    def codes(self) -> list[str]:
        return [f["code"] for f in self.frames if f["type"] == "error"]

    async def wait_for(self, type_: str, timeout_s: float = 10.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            for frame in self.frames:
                if frame["type"] == type_:
                    return frame
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no {type_} frame within {timeout_s} s")

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@dataclass
class Served:
    app: FastAPI
    base_url: str
    http: AsyncClient

    def ws_url(self, path: str) -> str:
        return self.base_url.replace("http://", "ws://", 1) + path


@asynccontextmanager
async def serve(settings: Settings, **overrides: object) -> AsyncIterator[Served]:
    """One worker: the app on a real uvicorn server. Two of them share PostgreSQL and Redis
    like two workers behind a load balancer."""
    app = create_app(settings.model_copy(update=overrides))
    # A fresh worker's first answers can wait on its first sweeps on a shared 2-core machine:
    # a generous read timeout, so a test fails on a wrong answer, not on a busy machine.
    async with (
        live_server(app) as base_url,
        AsyncClient(base_url=base_url, timeout=30.0) as http,
    ):
        yield Served(app, base_url, http)


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 3600


def jpeg_photo(width: int = 600, height: int = 400) -> bytes:
    """A plain JPEG, as a driver's phone would upload for their photo (drivers.photos)."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(out, format="JPEG")
    return out.getvalue()


def local_today() -> date:
    """Today where the service judges dates (the jurisdiction's zone, as
    `drivers.qualifications.today_in`): from 00:00 to 05:00 UTC it is still yesterday in
    Montréal, and a date set from UTC's today would be a day off."""
    from zoneinfo import ZoneInfo

    from coop import jurisdiction

    return datetime.now(ZoneInfo(jurisdiction.load().time_zone)).date()
