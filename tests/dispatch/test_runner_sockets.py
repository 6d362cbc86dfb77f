"""The sockets by the one rule for errors: PostgreSQL away while a driver changes availability
is an outage, answered with an `unavailable` error frame on a socket that stays open, and logged
once for the whole process (not once per frame), its end too."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from httpx import AsyncClient

from coop.settings import Settings
from server.app import create_app
from tests.builders import live_server, make_driver, socket
from tests.servers import postgres_relay


async def test_postgres_away_answers_each_frame_and_is_logged_once(
    settings: Settings,
    admin_headers: dict[str, str],
    short_tmp: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with postgres_relay(settings, short_tmp) as (proxy, database_url):
        app = create_app(settings.model_copy(update={"database_url": database_url}))
        async with live_server(app) as base_url, AsyncClient(base_url=base_url) as http:
            driver = await make_driver(http, admin_headers)
            async with socket(base_url, "/v1/ws/driver", driver.token) as client:
                with caplog.at_level(logging.INFO, logger="coop.realtime"):
                    await proxy.stop()
                    for available in (True, False, True):
                        await client.send({"type": "availability", "available": available})
                        error = await client.next("error", timeout_s=15)
                        assert error["code"] == "unavailable"
                        await asyncio.sleep(1.1)  # the pace of availability frames
                    await proxy.start()
                    await client.send({"type": "availability", "available": True})
                    echo = await client.next("availability", timeout_s=15)
                    assert echo["available"] is True  # the same socket, still open
    assert app.state.tasks.bugs == []
    mine = [r for r in caplog.records if r.name == "coop.realtime"]
    warnings = [r.getMessage() for r in mine if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # three frames refused, one outage
    assert warnings[0].startswith("sockets: database unreachable")
    assert not [r for r in mine if r.levelno >= logging.ERROR]  # an outage is no bug
    assert [r.getMessage() for r in mine if r.levelno == logging.INFO] == [
        "sockets: database answers again"
    ]
