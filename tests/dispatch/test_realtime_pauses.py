"""The pause monitor (COOP_GC_STATS): collector runs and event-loop lag reach /metrics; the
collector's tuning applies and is undone."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from prometheus_client import CollectorRegistry

from coop.settings import Settings
from dispatch.realtime.pauses import LAG_PROBE_INTERVAL_S, PauseMonitor, tune_gc
from server.app import create_app
from tests.polling import until


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_collections_and_loop_lag_are_recorded() -> None:
    registry = CollectorRegistry()
    monitor = PauseMonitor(registry)
    monitor.start()
    try:
        gc.collect(2)
        gc.collect(0)
        await asyncio.sleep(0)  # one turn of the loop: the probe starts its sleep
        # Blocks the loop for the probe's interval and 0.12 s more: it wakes at least that late.
        time.sleep(LAG_PROBE_INTERVAL_S + 0.12)
        await until(lambda: sample(registry, "coop_event_loop_lag_seconds_count") >= 1)
        assert sample(registry, "coop_gc_pause_seconds_count", generation="2") >= 1
        assert sample(registry, "coop_gc_pause_seconds_count", generation="0") >= 1
        assert sample(registry, "coop_gc_pause_max_seconds", generation="2") > 0
        assert sample(registry, "coop_event_loop_lag_seconds_count") >= 1
        assert sample(registry, "coop_event_loop_lag_max_seconds") >= 0.1
    finally:
        await monitor.stop()
    # Stopped: the callback is gone and the metrics are off the registry.
    assert monitor._on_gc not in gc.callbacks
    assert registry.get_sample_value("coop_gc_pause_seconds_count", {"generation": "2"}) is None


async def test_the_service_shows_its_pauses_at_metrics_when_asked(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"gc_stats": True}))
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        gc.collect()
        deadline = asyncio.get_running_loop().time() + 5.0
        while True:  # until the collection shows (it is recorded as it happens)
            text = (await client.get("/metrics")).text
            if 'coop_gc_pause_seconds_count{generation="2"}' in text:
                break
            assert asyncio.get_running_loop().time() < deadline, text
            await asyncio.sleep(LAG_PROBE_INTERVAL_S)
    assert "coop_event_loop_lag_seconds_bucket" in text


async def test_off_by_default(client: AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    assert "coop_gc_pause_seconds" not in text
    assert "coop_event_loop_lag_seconds" not in text


def test_tuning_sets_thresholds_and_freezes() -> None:
    before = gc.get_threshold()
    try:
        tune_gc(freeze=True, thresholds=(5000, 20, 30))
        assert gc.get_threshold() == (5000, 20, 30)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    tune_gc(freeze=False, thresholds=None)
    assert gc.get_threshold() == before


def test_thresholds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COOP_GC_THRESHOLDS", "[50000, 20, 100]")
    monkeypatch.setenv("COOP_GC_FREEZE", "true")
    loaded = Settings()
    assert loaded.gc_thresholds == (50000, 20, 100)
    assert loaded.gc_freeze is True
    monkeypatch.delenv("COOP_GC_THRESHOLDS")
    monkeypatch.delenv("COOP_GC_FREEZE")
    # `serve` tunes the collector unless told otherwise (docs/performance.md says why).
    assert Settings().gc_thresholds == (50_000, 10, 1)
    assert Settings().gc_freeze is True
