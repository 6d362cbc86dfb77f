"""The settings that point the workers at Redis Sentinel (docs/deployment.md), and the
single-host set-up left as it is when they are not given."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from redis.asyncio.sentinel import SentinelConnectionPool

from coop.redis_client import create_redis
from coop.settings import Settings


def test_sentinels_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COOP_REDIS_SENTINELS", "10.77.0.11:26379, 10.77.0.12:26379")
    monkeypatch.setenv("COOP_REDIS_SENTINEL_MASTER", "city")
    settings = Settings()
    assert settings.redis_sentinels == ["10.77.0.11:26379", "10.77.0.12:26379"]
    assert settings.redis_sentinel_master == "city"


def test_a_sentinel_without_a_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COOP_REDIS_SENTINELS", "10.77.0.11")
    with pytest.raises(ValidationError, match="COOP_REDIS_SENTINELS"):
        Settings()


async def test_without_sentinels_the_client_is_the_urls_own() -> None:
    client = create_redis("redis://127.0.0.1:6379/0", sentinels=[])
    try:
        assert not isinstance(client.connection_pool, SentinelConnectionPool)
    finally:
        await client.aclose()


async def test_with_sentinels_the_client_asks_them_for_the_master() -> None:
    client = create_redis(
        "redis://127.0.0.1:6379/0", sentinels=["127.0.0.1:26379"], sentinel_master="city"
    )
    try:
        assert isinstance(client.connection_pool, SentinelConnectionPool)
        assert client.connection_pool.service_name == "city"
    finally:
        await client.aclose()
