"""One push message as a push service takes it (RFC 8030 section 5): the payload encrypted for
one subscription (RFC 8291, `aes128gcm`) and the headers that tell the push service how long to
keep it, how urgent it is and which earlier message it replaces."""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass
from typing import Any

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec

from coop.push.vapid import b64url_decode

# RFC 8291: the user agent's P-256 public key (uncompressed point) and its 16-byte auth secret.
P256DH_BYTES = 65
AUTH_BYTES = 16
# Push services accept at least 4096 bytes of encrypted payload (RFC 8030 section 7.2); what the
# service pushes is far smaller (the app fetches the rest), and a payload over this is a bug.
MAX_PAYLOAD_BYTES = 3000
# RFC 8030 section 5.4: a topic is at most 32 characters of the URL-safe base64 alphabet.
MAX_TOPIC_CHARS = 32


class Urgency(enum.StrEnum):
    very_low = "very-low"
    low = "low"
    normal = "normal"
    high = "high"


@dataclass(frozen=True)
class Subscription:
    endpoint: str
    p256dh: str
    auth: str


def encrypt(payload: bytes, subscription: Subscription) -> bytes:
    """The RFC 8291 body: a fresh sender key pair and salt for every message."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"a push payload of {len(payload)} bytes is over {MAX_PAYLOAD_BYTES}")
    sender_key = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        payload,
        salt=os.urandom(16),
        private_key=sender_key,
        dh=b64url_decode(subscription.p256dh),
        auth_secret=b64url_decode(subscription.auth),
        version="aes128gcm",
    )
    return body


def encode_payload(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), default=str).encode()


def headers(
    *, authorization: str, ttl_s: int, urgency: Urgency, topic: str | None
) -> dict[str, str]:
    result = {
        "Authorization": authorization,
        "TTL": str(max(0, ttl_s)),
        "Urgency": urgency.value,
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
    }
    if topic is not None:
        result["Topic"] = topic[:MAX_TOPIC_CHARS]
    return result
