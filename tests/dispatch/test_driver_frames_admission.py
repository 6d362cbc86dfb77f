"""What a driver socket's frames may cost before they are used, over the real protocol: the
pace of `location` and `availability` frames (docs/security.md, "Round two")."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest_asyncio
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from coop.settings import Settings
from dispatch.locations.ingest import AVAILABILITY_BURST
from server.app import create_app
from tests.builders import DOWNTOWN, live_server, make_driver, socket


@pytest_asyncio.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[FastAPI, str]]:
    app = create_app(settings)
    async with live_server(app) as base_url:
        yield app, base_url


def stamp(late_s: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=late_s)).isoformat()


async def test_a_flood_of_availability_frames_is_limited_and_nothing_half_written(
    served: tuple[FastAPI, str], admin_headers: dict[str, str], engine: AsyncEngine
) -> None:
    """Finding 16: 200 availability frames at once (each would be a database transaction) are
    admitted at the pace of one a second, AVAILABILITY_BURST at once; the rest get
    `rate_limited`, the socket is kept, and the stored availability is the last one echoed."""
    app, base_url = served
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
    served: tuple[FastAPI, str], admin_headers: dict[str, str], engine: AsyncEngine
) -> None:
    """Finding 18: five reports stamped a second apart reach the server at once (the network or
    a busy worker held them): none is refused, and the newest is the driver's position."""
    app, base_url = served
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
