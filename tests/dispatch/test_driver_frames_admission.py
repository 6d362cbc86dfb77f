"""What a driver socket's frames may cost before they are used, over the real protocol: the
reading delay told only from admitted frames, one figure per socket; the pace of `location` and
`availability` frames (docs/security.md, "Round two")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.exceptions import ConnectionClosed

from coop.settings import Settings
from dispatch.locations.ingest import AVAILABILITY_BURST, CONGESTED_QUEUE_S
from dispatch.realtime.session import CLOSE_TRY_AGAIN_LATER
from tests.builders import DOWNTOWN, SocketClient, flushing_server, make_driver, socket


def stamp(late_s: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=late_s)).isoformat()


class Reader:
    """Reads every frame of a socket in the background (a flood's answers must be read, or the
    server closes a client that reads too slowly), and how the socket was closed."""

    def __init__(self, client: SocketClient) -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed: ConnectionClosed | None = None
        self._connection = client.connection
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                self.frames.append(json.loads(await self._connection.recv()))
        except ConnectionClosed as closed:
            self.closed = closed

    def errors(self, code: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == "error" and code in (None, f.get("code"))]

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_one_socket_flooding_late_stamps_does_not_slow_every_driver(
    settings: Settings, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Finding 2: one socket sends 100 frames a second stamped 5 s ago (after one fresh stamp,
    in a frame that is not even a valid report, to set its usual). Only its admitted frames
    count, once per socket, and the median across sockets is the honest one: nobody is asked
    to report less often."""
    honest = [await make_driver(client, admin_headers) for _ in range(3)]
    attacker = await make_driver(client, admin_headers)
    async with flushing_server(settings) as (base_url, ingest), AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(socket(base_url, "/v1/ws/driver", d.token))
            for d in honest
        ]
        bad = await stack.enter_async_context(socket(base_url, "/v1/ws/driver", attacker.token))
        readers = [Reader(ws) for ws in sockets]
        bad_reader = Reader(bad)
        try:
            await bad.send({"type": "location", **DOWNTOWN, "ts": stamp(0.0), "junk": 1})
            worst_delay_s, shedding = 0.0, False
            ends = time.monotonic() + 6.0
            tick = 0
            while time.monotonic() < ends:
                for _ in range(5):  # 100 a second
                    await bad.send({"type": "location", **DOWNTOWN, "ts": stamp(5.0)})
                if tick % 5 == 0:  # every 250 ms, on time
                    for n, ws in enumerate(sockets):
                        lat = DOWNTOWN["lat"] + (tick + n) * 1e-6
                        await ws.send(
                            {"type": "location", "lat": lat, "lon": DOWNTOWN["lon"], "ts": stamp(0)}
                        )
                tick += 1
                await asyncio.sleep(0.05)
                worst_delay_s = max(worst_delay_s, ingest.queue_delay_s)
                shedding = shedding or ingest.shed_gap_s > 0.0
            assert bad_reader.errors("rate_limited"), "the flood was not even limited"
        finally:
            for reader in [*readers, bad_reader]:
                await reader.stop()
        assert worst_delay_s < CONGESTED_QUEUE_S
        assert not shedding
        for reader in readers:
            assert reader.errors() == []  # no `overloaded`, nothing refused
        await sockets[0].send({"type": "ping"})
        await sockets[0].next("pong")


async def test_a_socket_flooding_stale_frames_while_the_worker_sheds_is_closed(
    settings: Settings, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Finding 2: while the worker reads behind (most sockets' reports waited 3 s) and sheds, a
    socket sending frames stamped 10 ms apart and 5 s ago, dropped as stale, counts them against
    itself (no app sends faster than the protocol's 100 ms) and is closed with 1013."""
    honest = [await make_driver(client, admin_headers) for _ in range(3)]
    attacker = await make_driver(client, admin_headers)
    async with flushing_server(settings) as (base_url, ingest), AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(socket(base_url, "/v1/ws/driver", d.token))
            for d in honest
        ]
        bad = await stack.enter_async_context(socket(base_url, "/v1/ws/driver", attacker.token))
        for ws in [*sockets, bad]:  # what each socket's reports usually take
            await ws.send({"type": "location", **DOWNTOWN, "ts": stamp(0.0)})
        readers = [Reader(ws) for ws in sockets]
        try:
            deadline = time.monotonic() + 20
            while ingest.shed_gap_s <= 0.0:
                assert time.monotonic() < deadline, "the worker never shed"
                await asyncio.sleep(0.12)
                for n, ws in enumerate(sockets):
                    lat = DOWNTOWN["lat"] + n * 1e-6
                    await ws.send(
                        {"type": "location", "lat": lat, "lon": DOWNTOWN["lon"], "ts": stamp(3.0)}
                    )
            bad_reader = Reader(bad)
            deadline = time.monotonic() + 15
            with contextlib.suppress(ConnectionClosed):
                while bad_reader.closed is None:
                    assert time.monotonic() < deadline, "a socket flooding stale frames kept"
                    await bad.send({"type": "location", **DOWNTOWN, "ts": stamp(5.0)})
                    await asyncio.sleep(0.01)
            await bad_reader.stop()
            assert bad_reader.closed is not None and bad_reader.closed.rcvd is not None
            assert bad_reader.closed.rcvd.code == CLOSE_TRY_AGAIN_LATER
            assert ingest.sockets_closed_for_ignoring == 1
        finally:
            for reader in readers:
                await reader.stop()


async def test_a_flood_of_availability_frames_is_limited_and_nothing_half_written(
    served_app: tuple[FastAPI, str], admin_headers: dict[str, str], engine: AsyncEngine
) -> None:
    """Finding 16: 200 availability frames at once (each would be a database transaction) are
    admitted at the pace of one a second, AVAILABILITY_BURST at once; the rest get
    `rate_limited`, the socket is kept, and the stored availability is the last one echoed."""
    app, base_url = served_app
    async with AsyncClient(base_url=base_url) as http:
        driver = await make_driver(http, admin_headers)
    async with socket(base_url, "/v1/ws/driver", driver.token) as ws:
        began = time.monotonic()
        for n in range(200):
            await ws.send({"type": "availability", "available": n % 2 == 0})
        await ws.send({"type": "ping"})
        await ws.next("pong", timeout_s=15)
        took_s = time.monotonic() - began
        echoes = [f for f in ws.seen if f["type"] == "availability"]
        refused = [f for f in ws.seen if f["type"] == "error"]
        assert 1 <= len(echoes) <= AVAILABILITY_BURST + int(took_s) + 1
        assert len(echoes) + len(refused) == 200
        assert {f["code"] for f in refused} == {"rate_limited"}
        async with engine.connect() as connection:
            stored = (
                await connection.execute(
                    text("SELECT available FROM location_driver_position WHERE driver_id = :id"),
                    {"id": driver.id},
                )
            ).scalar_one()
        assert stored is echoes[-1]["available"]
        # The pace comes back: a change a second later is taken.
        await asyncio.sleep(1.1)
        await ws.send({"type": "availability", "available": not stored})
        await ws.next("availability", available=not stored)
    async with AsyncClient(base_url=base_url) as http:
        metrics = (await http.get("/metrics")).text
    assert f"coop_availability_rate_limited_total {float(len(refused))}" in metrics


async def test_reports_sent_apart_but_read_together_are_all_taken_and_the_newest_stands(
    served_app: tuple[FastAPI, str], admin_headers: dict[str, str], engine: AsyncEngine
) -> None:
    """Finding 18: five reports stamped a second apart reach the server at once (the network or
    a busy worker held them): none is refused, and the newest is the driver's position."""
    app, base_url = served_app
    ingest = app.state.locations
    async with AsyncClient(base_url=base_url) as http:
        driver = await make_driver(http, admin_headers)
    route = [(DOWNTOWN["lat"] + n * 0.0001, DOWNTOWN["lon"]) for n in range(5)]  # 11 m a second
    async with socket(base_url, "/v1/ws/driver", driver.token) as ws:
        before = ingest.reports_received
        for n, (lat, lon) in enumerate(route):
            late_s = len(route) - 1 - n
            await ws.send({"type": "location", "lat": lat, "lon": lon, "ts": stamp(late_s)})
        # The echo comes once everything sent before it was handled.
        await ws.send({"type": "availability", "available": True})
        await ws.next("availability", available=True)
        assert [f for f in ws.seen if f["type"] == "error"] == []
        assert ingest.reports_received == before + len(route)
        await ingest.flush()
    async with engine.connect() as connection:
        lat = (
            await connection.execute(
                text(
                    "SELECT ST_Y(position::geometry) FROM location_driver_position "
                    "WHERE driver_id = :id"
                ),
                {"id": driver.id},
            )
        ).scalar_one()
    assert abs(lat - route[-1][0]) < 1e-9
