"""The transport-only baseline: a bare uvicorn WebSocket app, what the transport alone costs.

python -m loadtests.baseline --port 8765
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any


def baseline_app() -> Callable[..., Awaitable[None]]:
    """A bare ASGI app: every WebSocket is accepted at once, greeted with a hello, and each
    text frame is counted (a `ping` frame answered with a `pong`); GET /count answers the
    number of frames, GET /readyz 200. What the transport alone costs, for comparison."""
    frames = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal frames
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "http":
            body = json.dumps({"frames": frames}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": '{"type":"hello"}'})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            frames += 1
            text = message.get("text") or ""
            if text.startswith('{"type":"ping"'):
                await send({"type": "websocket.send", "text": '{"type":"pong"}'})

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.baseline")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    import uvicorn

    uvicorn.run(
        baseline_app(),
        host="127.0.0.1",
        port=args.port,
        ws_per_message_deflate=False,
        log_level="warning",
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
