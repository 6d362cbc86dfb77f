"""No agreement in force is a state of the co-op, not a bug of a background task: the
operations map keeps showing the city, the ingest keeps its speed limit, and nothing is recorded
as a bug (which would fail the test)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI

from dispatch.realtime.runtime import refresh_ingest_terms
from tests.polling import until


async def test_before_any_agreement_the_background_tasks_record_no_bug(app: FastAPI) -> None:
    app.state.clock = lambda: datetime(1960, 1, 1, tzinfo=UTC)  # before the founding version (1970)
    limit_kmh = app.state.locations.max_plausible_speed_kmh
    await refresh_ingest_terms(app)
    assert app.state.locations.max_plausible_speed_kmh == limit_kmh

    feed = app.state.ops_feed
    feed.subscribe()
    try:
        await until(lambda: feed.sequence >= 1 or bool(app.state.tasks.bugs), what="a city")
    finally:
        feed.unsubscribe()
    assert app.state.tasks.bugs == []
    assert feed.frame is not None and b'"at":"1960-01-01T00:00:00+00:00"' in feed.frame
