"""A push service for the tests: the RFC 8030 push resource on a real HTTP server on loopback,
and the phones subscribed to it.

It takes a push as a real push service and a real phone would: it refuses one whose VAPID JWT
(RFC 8292) is not signed by the application server key the subscription was made with, or
whose `aud`, `exp` or `sub` is wrong, or that lacks `TTL`; and it decrypts the payload with the
subscription's private key and auth secret (RFC 8291, `aes128gcm`), as the phone would. It can
be told to answer 404, 410, 429 or 5xx, or to hang, for the sender's rules to be tested.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    """A push the service accepted, as the phone read it."""

    payload: dict[str, Any]
    ttl_s: int
    urgency: str | None
    topic: str | None
    at: float  # time.monotonic()


@dataclass
class Phone:
    """One subscription: its keys (kept by the phone) and what it received."""

    token: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def p256dh(self) -> str:
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(raw)

    def device(self, **extra: Any) -> dict[str, Any]:
        """The body of `POST /v1/devices` for this subscription."""
        return {
            "endpoint": self.endpoint,
            "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth_secret)},
            **extra,
        }

    taken: int = 0

    async def next(self, timeout_s: float = 5.0) -> Received:
        """The next push this phone received (in order), waiting up to `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while len(self.received) <= self.taken:
            self.arrived.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no push arrived")
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except TimeoutError:
                raise AssertionError("no push arrived") from None
        self.taken += 1
        return self.received[self.taken - 1]


class PushService:
    def __init__(self, application_server_key: str) -> None:
        self.application_server_key = application_server_key
        self.phones: dict[str, Phone] = {}
        self.base_url = ""
        # What to answer next, for any subscription (consumed first to last), then 201.
        self.answers: list[int] = []
        self.hang = False
        self.refused: list[str] = []  # why pushes were refused (a signature, a claim...)
        self.requests = 0
        self.released = asyncio.Event()  # ends the requests left hanging

    def subscribe(self) -> Phone:
        token = b64url(os.urandom(12))
        phone = Phone(
            token=token,
            endpoint=f"{self.base_url}/push/{token}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth_secret=os.urandom(16),
        )
        self.phones[token] = phone
        return phone

    def _verify(self, headers: dict[str, str]) -> str | None:
        """Why the push would be refused, or None (RFC 8292 section 3 and 4)."""
        authorization = headers.get("authorization", "")
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "vapid":
            return "not vapid"
        parts = dict(item.strip().split("=", 1) for item in rest.split(","))
        if parts.get("k") != self.application_server_key:
            return "another application server key"
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), unb64url(parts["k"])
        )
        header_b64, claims_b64, signature_b64 = parts["t"].split(".")
        header = json.loads(unb64url(header_b64))
        if header.get("alg") != "ES256":
            return "not ES256"
        signature = unb64url(signature_b64)
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            public_key.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return "bad signature"
        claims = json.loads(unb64url(claims_b64))
        if claims.get("aud") != self.base_url:
            return f"aud {claims.get('aud')}"
        now = time.time()
        if not now < claims.get("exp", 0) <= now + 24 * 3600:
            return "exp"
        if not str(claims.get("sub", "")).startswith(("mailto:", "https://")):
            return "sub"
        if "ttl" not in headers:
            return "no TTL"
        if headers.get("content-encoding") != "aes128gcm":
            return "not aes128gcm"
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    line = (await reader.readline()).decode().rstrip("\r\n")
                    if not line:
                        break
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests += 1
                status = self._answer(method, path, headers, body)
                if status is None:  # hangs: the sender's timeout must end it
                    await self.released.wait()
                    return
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> int | None:
        if self.hang:
            return None
        phone = self.phones.get(path.removeprefix("/push/"))
        if method != "POST" or phone is None:
            return 404
        if self.answers:
            return self.answers.pop(0)
        why = self._verify(headers)
        if why is not None:
            self.refused.append(why)
            return 403 if why != "no TTL" else 400
        plain = http_ece.decrypt(
            body,
            private_key=phone.private_key,
            auth_secret=phone.auth_secret,
            version="aes128gcm",
        )
        phone.received.append(
            Received(
                payload=json.loads(plain),
                ttl_s=int(headers["ttl"]),
                urgency=headers.get("urgency"),
                topic=headers.get("topic"),
                at=time.monotonic(),
            )
        )
        phone.arrived.set()
        return 201


@asynccontextmanager
async def push_service(application_server_key: str) -> AsyncIterator[PushService]:
    service = PushService(application_server_key)
    server = await asyncio.start_server(service._handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    service.base_url = f"http://127.0.0.1:{port}"
    try:
        yield service
    finally:
        service.released.set()
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), 2)
        except TimeoutError:
            pass
