"""The service's VAPID key pair (RFC 8292), which signs every push so that a push service knows
the pushes to a subscription come from the server the subscription was made for.

In production the private key comes from `COOP_VAPID_PRIVATE_KEY` and the subject from
`COOP_VAPID_SUBJECT` (both required); elsewhere the key is generated once under
`COOP_DATA_DIR/keys/vapid.pem` (`0600`) and shared by every worker of that folder, like the
other service keys (`coop.keys`). Changing the key orphans every subscription: browsers bind a
subscription to the public key it was made with (`applicationServerKey`).
"""

from __future__ import annotations

import base64
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from coop.keys import MissingKey
from coop.settings import Settings

# A JWT's lifetime: RFC 8292 allows up to 24 hours; push services refuse more.
JWT_LIFETIME = timedelta(hours=12)
DEV_SUBJECT = "mailto:operations@localhost"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class VapidKey:
    """Signs the `Authorization: vapid t=…, k=…` header of a push, for one push service origin.

    Signed JWTs are kept per origin until half their life is gone: one signature per push
    service every few hours instead of one per push."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, subject: str) -> None:
        self._vapid = Vapid02()
        self._vapid.private_key = private_key
        self.subject = subject
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        # What apps pass as `applicationServerKey` (GET /v1/push/key).
        self.public_key = b64url(raw)
        self._signed: dict[str, tuple[datetime, str]] = {}

    def authorization(self, endpoint: str, now: datetime) -> str:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        kept = self._signed.get(audience)
        if kept is not None and kept[0] - now > JWT_LIFETIME / 2:
            return kept[1]
        expires_at = now + JWT_LIFETIME
        claims = {"aud": audience, "exp": int(expires_at.timestamp()), "sub": self.subject}
        header = str(self._vapid.sign(claims)["Authorization"])
        self._signed[audience] = (expires_at, header)
        return header


def load(settings: Settings) -> VapidKey:
    """The configured key pair, or (outside production) the generated one."""
    subject = settings.vapid_subject
    if settings.env == "production":
        if settings.vapid_private_key is None:
            raise MissingKey("COOP_VAPID_PRIVATE_KEY is required in production (docs/push.md)")
        if not subject.startswith(("mailto:", "https://")):
            raise MissingKey(
                "COOP_VAPID_SUBJECT is required in production: a mailto: or https: address "
                "where push services can reach the operators"
            )
    if not subject:
        subject = DEV_SUBJECT
    if settings.vapid_private_key is not None:
        return VapidKey(_parse(settings.vapid_private_key.get_secret_value()), subject)
    return VapidKey(_generated(settings.data_dir / "keys" / "vapid.pem"), subject)


def _parse(text: str) -> ec.EllipticCurvePrivateKey:
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = b64url_decode(text)
            if len(raw) != 32:
                raise ValueError("not 32 bytes")
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError as exc:
        raise MissingKey(
            "COOP_VAPID_PRIVATE_KEY is neither a PEM nor the base64url of a P-256 private key"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise MissingKey("COOP_VAPID_PRIVATE_KEY must be a P-256 (prime256v1) key")
    return key


def _generated(path: Path) -> ec.EllipticCurvePrivateKey:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        # Written whole under a private name, then linked into place (as coop.keys does): a
        # worker racing this one reads the winner's complete key, never a partial one.
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return _parse(path.read_text())
