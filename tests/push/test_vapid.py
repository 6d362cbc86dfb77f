"""The VAPID key pair: required in production, generated once elsewhere, and the signed header
a push service checks."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from coop.keys import MissingKey
from coop.push import vapid
from coop.settings import Settings
from tests.push.push_service import PushService, b64url

STRONG_ADMIN = "Zq7-kP2xW9mL4vR8tN1yB6cH3jF5gD0s"


def _settings(tmp_path: Path, **changes: object) -> Settings:
    return Settings(data_dir=tmp_path, admin_token=STRONG_ADMIN, jurisdiction="none").model_copy(
        update=changes
    )


def test_production_refuses_to_start_without_a_key_or_a_subject(tmp_path: Path) -> None:
    with pytest.raises(MissingKey, match="COOP_VAPID_PRIVATE_KEY"):
        vapid.load(_settings(tmp_path, env="production"))
    key = ec.generate_private_key(ec.SECP256R1())
    raw = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    with pytest.raises(MissingKey, match="COOP_VAPID_SUBJECT"):
        vapid.load(_settings(tmp_path, env="production", vapid_private_key=SecretStr(raw)))
    loaded = vapid.load(
        _settings(
            tmp_path,
            env="production",
            vapid_private_key=SecretStr(raw),
            vapid_subject="mailto:ops@coop.example",
        )
    )
    expected = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert loaded.public_key == b64url(expected)
    assert not (tmp_path / "keys" / "vapid.pem").exists()  # nothing generated in production


def test_a_pem_key_is_taken_and_a_bad_one_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    assert vapid.load(_settings(tmp_path, vapid_private_key=SecretStr(pem))).public_key
    for bad in ("not a key", b64url(b"short"), b64url(bytes(32))):
        with pytest.raises(MissingKey):
            vapid.load(_settings(tmp_path, vapid_private_key=SecretStr(bad)))
    other_curve = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(MissingKey, match="P-256"):
        vapid.load(_settings(tmp_path, vapid_private_key=SecretStr(other_curve.decode())))


def test_development_generates_one_private_key_every_worker_shares(tmp_path: Path) -> None:
    first = vapid.load(_settings(tmp_path))
    second = vapid.load(_settings(tmp_path))
    assert first.public_key == second.public_key
    path = tmp_path / "keys" / "vapid.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_signed_header_is_what_a_push_service_accepts(tmp_path: Path) -> None:
    key = vapid.load(_settings(tmp_path))
    service = PushService(key.public_key)
    service.base_url = "https://push.example.com"
    now = datetime.now(UTC)
    header = key.authorization("https://push.example.com/wpush/abc", now)
    checked = {"authorization": header, "ttl": "30", "content-encoding": "aes128gcm"}
    assert service._verify(checked) is None
    # Kept for the same origin, signed anew for another, and anew once half its life is gone.
    assert key.authorization("https://push.example.com/other", now) == header
    assert key.authorization("https://updates.example.org/x", now) != header
    assert key.authorization("https://push.example.com/x", now + timedelta(hours=7)) != header
    # Another origin's header, or another key's, is refused.
    service.base_url = "https://updates.example.org"
    assert service._verify(checked) == "aud https://push.example.com"
    stranger = PushService(vapid.load(_settings(tmp_path / "other")).public_key)
    stranger.base_url = "https://push.example.com"
    assert stranger._verify(checked) == "another application server key"
