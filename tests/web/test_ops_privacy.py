"""The operations map over its real stream: the committee reads where riders wait to about
100 m; only the operators see a pickup point exactly."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from tests.builders import live_server, make_driver, make_rider, request_trip
from tests.web.pages import sign_in

PICKUP = {"lat": 45.501234, "lon": -73.567891}


async def first_city(base_url: str, token: str) -> dict[str, Any]:
    """Signs in with `token` and answers the first `city` event of /ops/stream."""
    async with AsyncClient(base_url=base_url, timeout=30) as http:
        await sign_in(http, token)
        async with http.stream("GET", "/ops/stream") as stream:
            assert stream.status_code == 200
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    city: dict[str, Any] = json.loads(line.removeprefix("data: "))
                    return city
    raise AssertionError("the stream ended without a frame")


async def test_the_committee_sees_pickup_points_blurred_and_operators_exactly(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    committee = await make_driver(client, admin_headers, name="Chair", committee=True)
    rider = await make_rider(client)
    await request_trip(client, rider, pickup=PICKUP)
    admin_token = admin_headers["Authorization"].removeprefix("Bearer ")
    async with live_server(app) as base_url:
        seen_by_committee, seen_by_operator = await asyncio.wait_for(
            asyncio.gather(
                first_city(base_url, committee.token), first_city(base_url, admin_token)
            ),
            timeout=30,
        )
    exact = [[round(PICKUP["lat"], 5), round(PICKUP["lon"], 5)]]
    assert seen_by_operator["requests"] == exact
    [[lat, lon]] = seen_by_committee["requests"]
    assert (lat, lon) == (round(PICKUP["lat"], 3), round(PICKUP["lon"], 3))
