"""Stable rater pseudonyms: a driver sees the same name for the same rider, and nothing more.

The pseudonym is an HMAC of the (driver, rider) pair under a server key, so one rider reads
differently to different drivers and cannot be traced back without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

PREFIX = "rider-"
HEX_DIGITS = 8


def derive_key(secret: str) -> bytes:
    """A key used only for pseudonyms, derived from a server secret."""
    return hmac.new(
        secret.encode("utf-8"), b"coop reputation rater pseudonym v1", "sha256"
    ).digest()


def rater_pseudonym(*, key: bytes, driver_id: uuid.UUID, rider_id: uuid.UUID) -> str:
    """The name under which `driver_id` sees ratings by `rider_id`, like `rider-7f3a9c01`."""
    digest = hmac.new(key, driver_id.bytes + rider_id.bytes, hashlib.sha256).hexdigest()
    return PREFIX + digest[:HEX_DIGITS]
