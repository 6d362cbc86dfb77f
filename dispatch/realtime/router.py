"""The WebSocket routes: `/v1/ws/driver` and `/v1/ws/rider` (docs/protocol.md, "Realtime").

They are served by a thin ASGI layer in front of the app's routing, not as FastAPI routes: a
socket stays open for hours, and for all that time FastAPI's per-route machinery (dependency
solving, exit stacks, exception wrappers, a dozen suspended middleware frames) would stay alive
with it: about 10 KiB and a hundred objects per open socket, which every full run of the garbage
collector walks (docs/performance.md, "Connections").
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from coop.auth import Role
from dispatch.realtime.session import SocketSession

SOCKET_ROLES = {
    "/v1/ws/driver": Role.driver,  # offers and trip updates out; availability and locations in
    "/v1/ws/rider": Role.rider,  # trip updates and the driver's live position out
}


class SocketRoutes:
    """ASGI middleware: the two socket paths go straight to a `SocketSession`, the rest on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            role = SOCKET_ROLES.get(scope["path"])
            if role is not None:
                await SocketSession(WebSocket(scope, receive, send), role).run()
                return
        await self.app(scope, receive, send)
