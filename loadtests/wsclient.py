"""A light WebSocket client for thousands of sockets in one process.

The client is a plain `asyncio.Protocol` speaking RFC 6455 itself (no task, no queue, no thread
per socket): it masks what it sends, answers the server's protocol pings, and hands each text
frame to a callback. That keeps a generator of 10,000 sockets on a 2-core machine light enough
to leave the cores to the service it measures; every benchmark reports the CPU it took.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

from loadtests.report import log

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

FrameHandler = Callable[["WsClient", float, str], None]


class WsClient(asyncio.Protocol):
    """One client WebSocket (RFC 6455) as a bare protocol object: a handshake, masked text frames
    out, text frames in to `on_text(client, received_at, text)`, protocol pings answered.

    `waiter`, when set, is resolved by the handler (or by the handshake's end, or the close) so
    the bench can await one thing per socket without a task per socket."""

    __slots__ = (
        "index",
        "on_text",
        "transport",
        "buffer",
        "handshake_done",
        "request",
        "expected_accept",
        "waiter",
        "closed",
        "close_code",
        "fragments",
        "state",
    )

    def __init__(self, index: int, request: bytes, expected_accept: bytes, on_text: FrameHandler):
        self.index = index
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.handshake_done = False
        self.request = request
        self.expected_accept = expected_accept
        self.waiter: asyncio.Future[Any] | None = None
        self.closed = False
        self.close_code: int | None = None
        self.fragments: list[bytes] | None = None
        self.state: Any = None  # whatever the bench keeps per socket

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)
        self.request = b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._resolve(ConnectionError(f"socket {self.index} closed ({self.close_code})"))

    def _resolve(self, value: Any) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            if isinstance(value, BaseException):
                waiter.set_exception(value)
            else:
                waiter.set_result(value)

    def resolve(self, value: Any) -> None:
        self._resolve(value)

    def data_received(self, data: bytes) -> None:
        received_at = time.time()
        self.buffer += data
        if not self.handshake_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            del self.buffer[: end + 4]
            if not head.startswith("HTTP/1.1 101") or self.expected_accept not in head.encode():
                status = head.split("\r\n", 1)[0]
                self.close_code = -1
                self._resolve(ConnectionError(f"handshake refused: {status}"))
                assert self.transport is not None
                self.transport.close()
                return
            self.handshake_done = True
        self._frames(received_at)

    def _frames(self, received_at: float) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            length, start = second & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            opcode, final = first & 0x0F, bool(first & 0x80)
            if opcode == 0x9:  # ping: answer it, as every client must
                self._send(0xA, payload)
            elif opcode == 0x8:  # close: echo the code and let the server close the TCP side
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                if not self.closed:
                    self._send(0x8, payload[:2])
                    self.closed = True
            elif opcode == 0x1 and final:
                self.on_text(self, received_at, payload.decode())
            elif opcode in (0x1, 0x0):  # fragmented text
                self.fragments = [*(self.fragments or []), payload]
                if final:
                    text = b"".join(self.fragments).decode()
                    self.fragments = None
                    self.on_text(self, received_at, text)

    def _send(self, opcode: int, payload: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        length = len(payload)
        if length < 126:
            header = bytes((0x80 | opcode, 0x80 | length))
        elif length < 65536:
            header = bytes((0x80 | opcode, 0xFE)) + length.to_bytes(2, "big")
        else:
            header = bytes((0x80 | opcode, 0xFF)) + length.to_bytes(8, "big")
        mask = random.getrandbits(32).to_bytes(4, "big")
        if length:
            key = int.from_bytes((mask * (length // 4 + 1))[:length], "big")
            payload = (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big")
        transport.write(header + mask + payload)

    def send_text(self, text: str) -> None:
        self._send(0x1, text.encode())

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if not self.closed:
                self._send(0x8, (1000).to_bytes(2, "big"))
            self.transport.close()

    @property
    def open(self) -> bool:
        return self.handshake_done and not self.closed


def handshake(host: str, port: int, path: str, token: str | None) -> tuple[bytes, bytes]:
    """The upgrade request and the Sec-WebSocket-Accept the server must answer with."""
    key = base64.b64encode(secrets.token_bytes(16))
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), accept


def frame_type(text: str) -> str:
    """The `type` of a server frame; every frame the service sends begins with it."""
    if text.startswith('{"type":"'):
        return text[9 : text.index('"', 9)]
    value = json.loads(text)
    return str(value.get("type")) if isinstance(value, dict) else ""


async def open_sockets(
    base_url: str,
    path: str,
    tokens: Sequence[str | None],
    on_text: FrameHandler,
    *,
    concurrency: int = 100,
    ready: str = "hello",
    timeout_s: float = 30.0,
    progress_every: int = 2000,
) -> tuple[list[WsClient], list[str]]:
    """Opens one socket per token, at most `concurrency` handshakes at a time, each done when
    its first `ready` frame arrived (the service's hello: authenticated, subscribed, and its
    state sent). Answers (open clients, errors)."""
    loop = asyncio.get_running_loop()
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    clients: list[WsClient | None] = [None] * len(tokens)
    errors: list[str] = []
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(index: int, token: str | None) -> None:
        nonlocal done
        async with gate:
            request, accept = handshake(host, port, path, token)
            client = WsClient(index, request, accept, on_text)
            client.waiter = loop.create_future()
            waiter = client.waiter
            try:
                await asyncio.wait_for(
                    loop.create_connection(lambda: client, host, port), timeout_s
                )
                await asyncio.wait_for(waiter, timeout_s)
            except (OSError, TimeoutError, ConnectionError) as exc:
                errors.append(f"socket {index}: {type(exc).__name__}: {exc}")
                client.close()
                return
            clients[index] = client
            done += 1
            if progress_every and done % progress_every == 0:
                log(f"{done} sockets open")

    await asyncio.gather(*(one(i, token) for i, token in enumerate(tokens)))
    return [c for c in clients if c is not None], errors


def ready_on(kind: str, inner: FrameHandler | None = None) -> FrameHandler:
    """A frame handler that resolves a socket's waiter on its first frame of `kind` (e.g. the
    hello), then passes every frame on to `inner`."""

    def handle(client: WsClient, received_at: float, text: str) -> None:
        if client.waiter is not None and frame_type(text) == kind:
            client.resolve(received_at)
        if inner is not None:
            inner(client, received_at, text)

    return handle


async def await_all(
    clients: Iterable[WsClient],
    send: Callable[[WsClient], None],
    *,
    timeout_s: float,
    spread_s: float = 0.0,
) -> tuple[list[float], int]:
    """Arms every client's waiter, calls `send` on each (spread over `spread_s`), and waits for
    the answers. Answers (round trips in seconds, how many did not answer in time)."""
    loop = asyncio.get_running_loop()
    items = list(clients)
    started: list[float] = [0.0] * len(items)
    futures: list[asyncio.Future[Any]] = []
    step = spread_s / len(items) if items and spread_s else 0.0
    for i, client in enumerate(items):
        client.waiter = loop.create_future()
        futures.append(client.waiter)
        started[i] = time.time()
        send(client)
        if step and i % 100 == 99:
            await asyncio.sleep(step * 100)
    results = await asyncio.gather(
        *(asyncio.wait_for(f, timeout_s) for f in futures), return_exceptions=True
    )
    round_trips = [
        float(r) - started[i] for i, r in enumerate(results) if not isinstance(r, BaseException)
    ]
    return round_trips, len(items) - len(round_trips)
