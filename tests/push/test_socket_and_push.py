"""Over real sockets: a driver whose socket writes the offer is not pushed it, and a dead push
service delays no offer to a socket-connected driver (the batch times with and without it are
printed for docs/performance.md)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest_asyncio
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from coop.settings import Settings
from server.app import create_app
from tests.builders import (
    go_online,
    live_server,
    make_driver,
    make_rider,
    north,
    place_driver,
    request_trip,
    socket,
)
from tests.push.push_service import push_service


@dataclass
class Served:
    app: FastAPI
    base_url: str
    http: AsyncClient


@pytest_asyncio.fixture
async def served(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Served]:
    app = create_app(settings.model_copy(update={"push_allow_loopback": True}))
    async with live_server(app) as base_url, AsyncClient(base_url=base_url) as http:
        yield Served(app, base_url, http)


async def test_a_socket_connected_driver_is_not_held_up_by_a_dead_push_service(
    served: Served, admin_headers: dict[str, str]
) -> None:
    app, http = served.app, served.http
    async with push_service(app.state.vapid.public_key) as pushes, AsyncExitStack() as stack:
        online = await make_driver(http, admin_headers, name="Online Driver")
        away = await make_driver(http, admin_headers, name="Away Driver")
        online_phone, away_phone = pushes.subscribe(), pushes.subscribe()
        for driver, phone in ((online, online_phone), (away, away_phone)):
            response = await http.post("/v1/devices", json=phone.device(), headers=driver.headers)
            assert response.status_code == 201
        ws = await stack.enter_async_context(socket(served.base_url, "/v1/ws/driver", online.token))
        await go_online(ws, north(0))
        await app.state.locations.flush()
        timings: dict[str, list[float]] = {"answering": [], "hanging": []}
        for round_ in range(6):
            mode = "hanging" if round_ % 2 else "answering"
            pushes.hang = mode == "hanging"
            for offset_m in (0, 3000):
                rider = await make_rider(http)
                await request_trip(http, rider, pickup=north(offset_m))
            await place_driver(app, away.id, north(3000))
            started = time.monotonic()
            report = await app.state.matcher.run_batch()
            batch_s = time.monotonic() - started
            frame = await ws.next("offer", timeout_s=2.0)
            framed_s = time.monotonic() - started
            timings[mode].append(batch_s)
            assert framed_s < 1.0, framed_s
            offers = {offer.driver_id: offer.id for offer in report.offers}
            assert str(offers[online.id]) == frame["offer_id"]
            if mode == "answering":
                # (A push of an earlier, hanging round may come first, once answered.)
                pushed = await away_phone.next(timeout_s=2.0)
                while pushed.payload["offer_id"] != str(offers[away.id]):
                    pushed = await away_phone.next(timeout_s=2.0)
            for driver in (online, away):
                declined = await http.post(
                    f"/v1/offers/{offers[driver.id]}/decline", headers=driver.headers
                )
                assert declined.status_code == 200
        # The socket wrote every offer to the online driver: none of them was pushed.
        await asyncio.sleep(1.5)  # past the last batch's check of its receipts
        assert online_phone.received == []
        assert app.state.offer_pushes.pushed_after_wait == 0
        print(
            "batch with the push service answering: median "
            f"{statistics.median(timings['answering']) * 1000:.1f} ms; hanging: "
            f"{statistics.median(timings['hanging']) * 1000:.1f} ms"
        )
        assert statistics.median(timings["hanging"]) < 1.0
