"""Position ingest against the real PostGIS: bulk flushes (one statement per table, not one per
report), presence, trip trails, the GiST index, and a flush that survives the database going
away."""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from coop.db import create_engine, utcnow
from coop.pubsub import rider_channel
from coop.settings import Settings
from dispatch.locations import service as locations_service
from dispatch.locations.ingest import MAX_TRAIL_POINTS_PER_DRIVER, LocationIngest
from dispatch.locations.models import DriverPosition, TrailPoint
from tests.builders import DOWNTOWN, PLATEAU, assigned_trip, make_driver, make_rider, place_driver
from tests.servers import SocketProxy


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # Unix socket paths are limited to about 100 bytes: pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="coop-") as folder:
        yield Path(folder)


def _report(
    ingest: LocationIngest, driver_id: uuid.UUID, lat: float, lon: float, **extra: Any
) -> None:
    ingest.report(
        driver_id,
        lat=lat,
        lon=lon,
        heading_deg=extra.get("heading_deg"),
        speed_mps=extra.get("speed_mps"),
        received_at=extra.get("at", utcnow()),
    )


async def test_a_flush_writes_every_report_in_one_statement_on_its_own_connection(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    drivers = [await make_driver(client, admin_headers, name=f"D{i}") for i in range(30)]
    on_trip = drivers[0]
    await assigned_trip(app, client, await make_rider(client), on_trip)
    ingest: LocationIngest = app.state.locations
    for round_ in range(3):
        for i, driver in enumerate(drivers):
            _report(ingest, driver.id, 45.50 + i * 0.001, -73.57 + round_ * 0.001, speed_mps=5.0)

    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    shared: list[str] = []

    def count_shared(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        shared.append(statement)

    writer = ingest.writer.sync_engine
    event.listen(writer, "before_cursor_execute", count)
    event.listen(app.state.engine.sync_engine, "before_cursor_execute", count_shared)
    try:
        result = await ingest.flush()
    finally:
        event.remove(writer, "before_cursor_execute", count)
        event.remove(app.state.engine.sync_engine, "before_cursor_execute", count_shared)
    assert (result.drivers, result.trail_points, result.riders_told) == (30, 90, 1)
    # One statement for all three tables, in autocommit (no BEGIN or COMMIT around it), on
    # the ingest's own connection: nothing through the pool the requests share.
    assert len(statements) == 1
    for table in ("location_driver_position", "location_trail_point", "UPDATE trip"):
        assert table in statements[0]
    assert shared == []
    assert ingest.writer is not app.state.engine
    async with ingest.writer.connect() as connection:
        await connection.exec_driver_sql("SELECT 1")
        raw = await connection.get_raw_connection()
        assert not raw.driver_connection.is_in_transaction()  # type: ignore[union-attr]

    rows = (await session.scalars(select(DriverPosition))).all()
    assert len(rows) == 30
    # Only the driver holding a trip leaves a trail: three points, in order.
    trail = (await session.scalars(select(TrailPoint).order_by(TrailPoint.id))).all()
    assert {point.driver_id for point in trail} == {on_trip.id}
    assert len(trail) == 3
    presence = await locations_service.presence(session=session, driver_id=on_trip.id)
    assert presence is not None and presence.position is not None
    assert presence.position.lon == pytest.approx(-73.568)
    assert (await ingest.flush()).drivers == 0  # nothing left buffered


async def test_only_the_latest_report_of_a_driver_is_kept_with_heading_and_speed(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    driver = await make_driver(client, admin_headers)
    ingest: LocationIngest = app.state.locations
    _report(ingest, driver.id, **DOWNTOWN, heading_deg=90.0, speed_mps=8.0)
    _report(ingest, driver.id, **PLATEAU, heading_deg=180.0, speed_mps=3.5)
    assert ingest.pending == 1
    await ingest.flush()
    row = await session.get(DriverPosition, driver.id)
    assert row is not None
    assert (row.heading_deg, row.speed_mps, row.available) == (180.0, 3.5, False)
    presence = await locations_service.presence(session=session, driver_id=driver.id)
    assert presence is not None and presence.position is not None
    assert (presence.position.lat, presence.position.lon) == (PLATEAU["lat"], PLATEAU["lon"])


async def test_a_sign_of_life_refreshes_presence_without_moving_anyone(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    fresh = await make_driver(client, admin_headers, name="Fresh")
    placed = await make_driver(client, admin_headers, name="Placed")
    await place_driver(app, placed.id, DOWNTOWN)
    before = await locations_service.presence(session=session, driver_id=placed.id)
    assert before is not None
    ingest: LocationIngest = app.state.locations
    later = utcnow() + timedelta(seconds=1)
    ingest.touch(placed.id, later)
    ingest.touch(fresh.id, later)
    await ingest.flush()
    after = await locations_service.presence(session=session, driver_id=placed.id)
    assert after is not None and after.last_seen_at == later
    assert after.position == before.position and after.available
    # A driver never seen before is present, nowhere in particular, and not available.
    first = await locations_service.presence(session=session, driver_id=fresh.id)
    assert first is not None
    assert (first.position, first.available, first.last_seen_at) == (None, False, later)


async def test_a_long_silence_starts_a_new_stretch_of_waiting(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    driver = await make_driver(client, admin_headers)
    await place_driver(app, driver.id, DOWNTOWN)
    grace = app.state.settings.driver_grace_s
    ingest: LocationIngest = app.state.locations

    async def since() -> Any:
        row = await session.get(DriverPosition, driver.id, populate_existing=True)
        assert row is not None
        return row.available_since

    started = await since()
    # A short gap (within the grace period) keeps the stretch ...
    _report(ingest, driver.id, **DOWNTOWN, at=utcnow() + timedelta(seconds=grace - 1))
    await ingest.flush()
    assert await since() == started
    # ... a long one starts a new one.
    back = utcnow() + timedelta(seconds=3 * grace)
    _report(ingest, driver.id, **DOWNTOWN, at=back)
    await ingest.flush()
    assert await since() == back
    # Going off duty and on again starts one too.
    await place_driver(app, driver.id, DOWNTOWN, available=False)
    assert await since() is None
    await place_driver(app, driver.id, DOWNTOWN)
    assert await since() > back - timedelta(seconds=3 * grace)


async def test_riders_hear_where_their_driver_is_after_a_flush(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    idle = await make_driver(client, admin_headers, name="Idle")
    trip = await assigned_trip(app, client, rider, driver)
    listener = app.state.redis.pubsub()
    await listener.subscribe(rider_channel(rider.id))
    try:
        assert (await listener.get_message(timeout=2))["type"] == "subscribe"
        ingest: LocationIngest = app.state.locations
        _report(ingest, driver.id, 45.5030, -73.5680)
        _report(ingest, driver.id, 45.5040, -73.5690)  # two reports, one frame: the latest
        _report(ingest, idle.id, 45.5100, -73.5700)  # no trip: no rider to tell
        assert (await ingest.flush()).riders_told == 1
        message = await listener.get_message(timeout=2)
        assert message is not None and message["type"] == "message"
        told = json.loads(message["data"])
        eta_s = told.pop("eta_s")
        assert told == {
            "type": "driver_location",
            "trip_id": trip["id"],
            "lat": 45.504,
            "lon": -73.569,
            "heading_to": "pickup",
        }
        assert isinstance(eta_s, int) and eta_s >= 0
        assert await listener.get_message(timeout=0.2) is None
    finally:
        await listener.aclose()


async def test_the_latest_positions_have_a_gist_index_the_knn_search_uses(
    session: AsyncSession,
) -> None:
    definition = await session.scalar(
        text(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'location_driver_position'"
            " AND indexname = 'ix_location_driver_position_position'"
        )
    )
    assert definition is not None and "USING gist" in definition
    await session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        row[0]
        for row in await session.execute(
            text(
                "EXPLAIN SELECT driver_id FROM location_driver_position ORDER BY position <->"
                " CAST(ST_SetSRID(ST_MakePoint(-73.56, 45.5), 4326) AS geography) LIMIT 8"
            )
        )
    )
    assert "ix_location_driver_position_position" in plan
    await session.rollback()


async def test_reports_wait_out_a_database_outage_and_are_written_after(
    settings: Settings,
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    short_tmp: Path,
) -> None:
    driver = await make_driver(client, admin_headers)
    url = make_url(settings.database_url)
    proxy = SocketProxy(
        short_tmp / ".s.PGSQL.5432", str(url.query.get("host") or url.host), url.port or 5432
    )
    await proxy.start()
    proxied = url.set(host=None, port=None).update_query_dict({"host": str(short_tmp)})
    engine = create_engine(proxied.render_as_string(False), pool_size=1, max_overflow=0)
    ingest = LocationIngest(engine=engine, redis=app.state.redis, grace_s=settings.driver_grace_s)
    try:
        _report(ingest, driver.id, **DOWNTOWN)
        await ingest.flush()
        await proxy.stop()
        _report(ingest, driver.id, **PLATEAU)
        with pytest.raises(Exception):  # noqa: B017  (whatever the driver raises)
            await asyncio.wait_for(ingest.flush(), 10)
        assert ingest.pending == 1  # kept for the next flush
        await proxy.start()
        await ingest.flush()
        assert ingest.pending == 0
    finally:
        await ingest.close()
        await engine.dispose()
        await proxy.stop()
    presence = await locations_service.presence(session=session, driver_id=driver.id)
    assert presence is not None and presence.position is not None
    assert (presence.position.lat, presence.position.lon) == (PLATEAU["lat"], PLATEAU["lon"])


async def test_reports_of_removed_drivers_are_dropped_not_failed(
    app: FastAPI, session: AsyncSession
) -> None:
    ingest: LocationIngest = app.state.locations
    _report(ingest, uuid.uuid4(), **DOWNTOWN)
    result = await ingest.flush()
    assert result.drivers == 1
    assert (await session.scalars(select(DriverPosition))).all() == []


async def test_a_runaway_app_cannot_flood_the_trail(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    driver = await make_driver(client, admin_headers)
    await assigned_trip(app, client, await make_rider(client), driver)
    ingest: LocationIngest = app.state.locations
    for i in range(MAX_TRAIL_POINTS_PER_DRIVER + 25):
        _report(ingest, driver.id, 45.50 + i * 0.0001, -73.57)
    await ingest.flush()
    points = (await session.scalars(select(TrailPoint))).all()
    assert len(points) == MAX_TRAIL_POINTS_PER_DRIVER
    # The latest position is still the latest report.
    presence = await locations_service.presence(session=session, driver_id=driver.id)
    assert presence is not None and presence.position is not None
    assert presence.position.lat == pytest.approx(
        45.50 + (MAX_TRAIL_POINTS_PER_DRIVER + 24) * 0.0001
    )
    # The cap is per flush: the next reports are trailed again.
    _report(ingest, driver.id, 45.51, -73.57)
    await ingest.flush()
    assert len((await session.scalars(select(TrailPoint))).all()) == MAX_TRAIL_POINTS_PER_DRIVER + 1
