"""How big a client's frame may be, over a real server: a frame over COOP_WS_MAX_FRAME_BYTES gets
a bad_message error frame and the socket stays open; one over the server's own message limit
(`Settings.ws_transport_max_bytes`, uvicorn's `ws_max_size`) is refused unread, with close code
1009, so no client can make a worker buffer megabytes."""

from __future__ import annotations

import json

import pytest
from httpx import AsyncClient
from websockets.exceptions import ConnectionClosedError

from coop.settings import Settings
from server.app import create_app
from tests.builders import DOWNTOWN, go_online, live_server, make_driver, socket

MESSAGE_TOO_BIG = 1009


def location_of_size(size: int) -> str:
    """A location frame padded to exactly `size` bytes."""
    frame = json.dumps({"type": "location", **DOWNTOWN, "pad": ""})
    return frame[:-2] + "x" * (size - len(frame)) + '"}'


def test_the_transport_limit_sits_a_little_above_the_frame_limit() -> None:
    assert Settings(ws_max_frame_bytes=4096).ws_transport_max_bytes == 65536
    assert Settings(ws_max_frame_bytes=50_000).ws_transport_max_bytes == 100_000
    for frame_bytes in (256, 4096, 50_000, 1_000_000):
        settings = Settings(ws_max_frame_bytes=frame_bytes)
        assert settings.ws_transport_max_bytes > settings.ws_max_frame_bytes


async def test_a_frame_over_the_servers_limit_is_refused_with_1009(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    app = create_app(settings)
    limit = settings.ws_transport_max_bytes
    assert len(location_of_size(limit)) == limit
    async with live_server(app) as base_url:
        async with AsyncClient(base_url=base_url) as http:
            driver = await make_driver(http, admin_headers)
        async with socket(base_url, "/v1/ws/driver", driver.token) as ws:
            # At the server's limit: read, and refused by the service with an error frame.
            await ws.send(location_of_size(limit))
            error = await ws.next("error")
            assert error["code"] == "bad_message" and "at most" in error["message"]
            # One byte over: the server closes the socket without reading the frame.
            await ws.send(location_of_size(limit + 1))
            with pytest.raises(ConnectionClosedError) as closed:
                await ws.next("error", timeout_s=5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == MESSAGE_TOO_BIG
        assert app.state.locations.reports_received == 0
        # The worker is unharmed: the driver reconnects and is served.
        async with socket(base_url, "/v1/ws/driver", driver.token) as ws:
            await go_online(ws, DOWNTOWN)
        assert app.state.locations.reports_received == 1
