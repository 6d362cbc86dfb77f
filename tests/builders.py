"""Builders for test data, through the public API so every test exercises the real path."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI
from httpx import AsyncClient

_member_numbers = itertools.count(1000)

DOWNTOWN = {"lat": 45.5017, "lon": -73.5673}
PLATEAU = {"lat": 45.5225, "lon": -73.5800}
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
) -> Account:
    number = member_number or f"M-{next(_member_numbers)}-{uuid.uuid4().hex[:6]}"
    payload = {
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
