"""Stable rater pseudonyms: a driver sees the same name for the same rider, and nothing more.

The pseudonym is an HMAC-SHA-256 of the (driver, rider) pair under a key of its own
(`COOP_PSEUDONYM_KEY`; in development a random one kept under `COOP_DATA_DIR`), cut to 128 bits:
one rider reads differently to different drivers, and without the key nobody can test a guess
of which rider is behind a pseudonym, nor find two pseudonyms of the same rider.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

PREFIX = "rider-"
HEX_DIGITS = 32  # 128 bits


def derive_key(secret: str) -> bytes:
    """The HMAC key of pseudonyms, derived from the pseudonym secret (`COOP_PSEUDONYM_KEY`)."""
    return hmac.new(
        secret.encode("utf-8"), b"coop reputation rater pseudonym v1", "sha256"
    ).digest()


def rater_pseudonym(*, key: bytes, driver_id: uuid.UUID, rider_id: uuid.UUID) -> str:
    """The name under which `driver_id` sees ratings by `rider_id`, like
    `rider-7f3a9c01e2d4b6a8c0e2f4a6b8d0c2e4` (128 bits of the HMAC)."""
    digest = hmac.new(key, driver_id.bytes + rider_id.bytes, hashlib.sha256).hexdigest()
    return PREFIX + digest[:HEX_DIGITS]
