"""Request bodies above `COOP_MAX_BODY_BYTES` answer 413 without being read.

A declared `Content-Length` over the limit is refused before a byte of the body is read. A body
without one (chunked) is counted as it arrives: the first chunk past the limit ends the request
with 413, and the connection is closed so the rest is never read either. Nothing buffers more
than the limit, whoever reads the body (FastAPI's body parsing, a handler, a dependency).
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coop.errors import HTTP_TYPES, PROBLEM_JSON
from coop.problems import problem_bytes


class BodyTooLarge(HTTPException):
    """Raised from `receive` once the body is over the limit. An HTTPException because FastAPI's
    body parsing re-raises those as they are (any other exception would become a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"The request body is larger than the limit of {limit} bytes",
            headers={"Connection": "close"},
        )


def _problem(limit: int) -> bytes:
    type_, title = HTTP_TYPES[413]
    return problem_bytes(
        413, type_, title, f"The request body is larger than the limit of {limit} bytes"
    )


class BodySizeLimit:
    """ASGI middleware: bodies over `max_bytes` are refused unread (413 problem details)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        larger: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # (method, exact path) -> its own limit: the few routes whose body is a file (a driver's
        # photo), so the limit of every other route stays small.
        self.larger = dict(larger or {})

    async def _refuse(self, send: Send, max_bytes: int) -> None:
        body = _problem(max_bytes)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.larger.get(
            (scope.get("method", ""), scope.get("path", "")), self.max_bytes
        )
        declared = None
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                break
        if declared is not None and declared > max_bytes:
            await self._refuse(send, max_bytes)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge(max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # Raised outside FastAPI's handlers (e.g. a middleware read the body): answer here.
            if not started:
                await self._refuse(send, max_bytes)
