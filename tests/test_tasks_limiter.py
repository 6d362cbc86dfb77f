"""The limiter by the one rule for errors: Redis away fails the limits open, counted, and is
logged once (a warning when it starts, an info when the limits are counted again)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from coop.ratelimit import SKIP_AFTER_FAILURE_S, RateLimits
from coop.settings import Settings
from tests.servers import ThrowawayRedis


async def test_a_redis_outage_is_logged_once_by_the_limiter_and_its_end_too(
    settings: Settings, short_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = ThrowawayRedis(short_tmp)
    await server.start()
    registry = CollectorRegistry()
    limits = RateLimits(settings.model_copy(update={"redis_url": server.url}), registry)
    try:
        with caplog.at_level(logging.INFO, logger="coop.ratelimit"):
            await limits.check_api("account")
            server.stop()
            for _ in range(3):  # three skips apart: each finds Redis away again
                await limits.check_api("account")  # fails open
                await asyncio.sleep(SKIP_AFTER_FAILURE_S + 0.05)
            await server.start()
            await limits.check_api("account")
    finally:
        await limits.close()
        server.stop()
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "coop.ratelimit"]
    assert [level for level, _ in messages] == [logging.WARNING, logging.INFO], messages
    assert "rate limits not enforced: redis unreachable" in messages[0][1]
    assert (registry.get_sample_value("coop_rate_limit_unavailable_total") or 0) >= 3
