"""The service as the simulated apps see it: the HTTP calls and WebSocket addresses of
docs/protocol.md."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect

from server.simulator.stats import CityStats

logger = logging.getLogger("coop.simulator")

# Sees every frame the simulated apps receive: (channel, frame). Tests check them against the
# AsyncAPI document; a debugging session can print them.
FrameObserver = Callable[[str, dict[str, Any]], None]


def ws_url(base_url: str, path: str) -> str:
    """The WebSocket address of `path` on the service at `base_url` (http -> ws, https -> wss)."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"the base URL must be http:// or https://, not {base_url!r}")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class ServiceClient:
    """HTTP calls to the service; a transport failure or a 5xx is counted, never raised."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        stats: CityStats,
        observer: FrameObserver | None = None,
    ) -> None:
        self.http = http
        self.stats = stats
        self.base_url = str(http.base_url).rstrip("/")
        self.observer = observer

    def received(self, channel: str, frame: dict[str, Any]) -> None:
        """Shows a frame the service sent on `channel` ("driver" or "rider") to the observer."""
        if self.observer is not None:
            self.observer(channel, frame)

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response | None:
        """The answer, or None when the service could not be reached."""
        try:
            response = await self.http.request(
                method,
                path,
                json=body,
                headers={**(bearer(token) if token else {}), **(headers or {})},
            )
        except httpx.HTTPError as exc:
            self.stats.http_errors += 1
            logger.warning("%s %s failed: %s %s", method, path, type(exc).__name__, exc)
            return None
        if response.status_code >= 500:
            self.stats.http_errors += 1
            logger.warning(
                "%s %s answered %s: %s", method, path, response.status_code, response.text
            )
        return response

    async def connect(self, path: str, token: str) -> ClientConnection:
        """Opens the WebSocket at `path`, authenticated by the Authorization header."""
        return await connect(
            ws_url(self.base_url, path),
            additional_headers=bearer(token),
            compression=None,
            open_timeout=10,
            ping_interval=None,  # the service pings in its own frames; we answer those
            max_queue=256,
        )


async def send_frame(websocket: ClientConnection, frame: dict[str, Any]) -> None:
    await websocket.send(json.dumps(frame, separators=(",", ":")))


def parse_frame(raw: str | bytes) -> dict[str, Any] | None:
    """A frame as a dict, or None when it is not a JSON object with a `type`."""
    try:
        frame = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        return None
    return frame
