"""The WebSocket routes: `/v1/ws/driver` and `/v1/ws/rider` (PROTOCOL.md, "Realtime")."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from dispatch.auth import Role
from dispatch.realtime.session import SocketSession

router = APIRouter(tags=["realtime"])


@router.websocket("/v1/ws/driver")
async def driver_socket(websocket: WebSocket) -> None:
    """Offers and trip updates out; availability and location frames in."""
    await SocketSession(websocket, Role.driver).run()


@router.websocket("/v1/ws/rider")
async def rider_socket(websocket: WebSocket) -> None:
    """Trip updates and the driver's live position out."""
    await SocketSession(websocket, Role.rider).run()
