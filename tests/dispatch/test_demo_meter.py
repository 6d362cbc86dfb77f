"""The demo's sped-up clock: the meter pays the simulated minutes (COOP_METER_TIME_SCALE)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from dispatch.app import create_app
from dispatch.core.settings import Settings
from dispatch.trips import meter
from tests.builders import assigned_trip, make_driver, make_rider


@pytest_asyncio.fixture
async def demo_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update={"meter_time_scale": 8.0}))
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


async def test_a_sped_up_demo_meters_its_simulated_minutes(
    demo_app: FastAPI, admin_headers: dict[str, str]
) -> None:
    async with AsyncClient(transport=ASGITransport(app=demo_app), base_url="http://test") as http:
        rider = await make_rider(http)
        driver = await make_driver(http, admin_headers)
        trip = await assigned_trip(demo_app, http, rider, driver)
        for step in ("arrived", "start", "complete"):
            response = await http.post(f"/v1/trips/{trip['id']}/{step}", headers=driver.headers)
            assert response.status_code == 200, response.text
        done = response.json()
    started = datetime.fromisoformat(done["started_at"])
    ended = datetime.fromisoformat(done["ended_at"])
    assert done["fare"]["duration_s"] == round(meter.duration_s(started, ended) * 8.0)


def test_production_meters_real_time() -> None:
    with pytest.raises(ValueError, match="COOP_METER_TIME_SCALE"):
        Settings(env="production", admin_token="x" * 32, meter_time_scale=8.0)
    assert Settings().meter_time_scale == 1.0
