"""What realtime dispatch runs beside the HTTP routes, started and stopped by the app lifespan.

Always: the hub (sockets need it). With `COOP_BACKGROUND_TASKS` (off in tests, which drive
these by hand): the location flusher and the region's matcher, whose batches also sweep expired
offers and unfulfilled requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from dispatch.locations.ingest import LocationIngest
from dispatch.matching.matcher import Matcher
from dispatch.realtime.hub import Hub
from dispatch.settings import Settings


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    hub = Hub(app.state.redis)
    ingest = LocationIngest(
        engine=app.state.engine, redis=app.state.redis, grace_s=settings.driver_grace_s
    )
    matcher = Matcher(
        engine=app.state.engine,
        sessionmaker=app.state.sessionmaker,
        redis=app.state.redis,
        settings=settings,
    )
    app.state.hub = hub
    app.state.locations = ingest
    app.state.matcher = matcher
    await hub.start()
    tasks: list[asyncio.Task[None]] = []
    if settings.background_tasks:
        tasks.append(
            asyncio.create_task(
                ingest.run(settings.location_flush_interval_ms / 1000), name="location-flusher"
            )
        )
        tasks.append(asyncio.create_task(matcher.run(), name=f"matcher-{matcher.region}"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if settings.background_tasks:
            await ingest.drain()
        await hub.stop()
