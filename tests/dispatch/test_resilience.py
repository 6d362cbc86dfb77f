"""Faults against the real services: PostgreSQL cut off through a relay, Redis stopped and
started or cut off from one worker, offers that never reached a socket, and completion with
the driver's socket on another worker. Every wait is for an event, with a bound."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from coop.geo import haversine_m
from coop.settings import Settings
from dispatch.locations.ingest import CONGESTED_QUEUE_S, GAP_SPREAD, MIN_SHED_GAP_S
from dispatch.realtime.hub import Connection
from dispatch.realtime.session import IGNORED_ASK_GRACE_S, IGNORED_ASK_SHEDS
from dispatch.trips.models import Offer, OfferStatus
from server.app import create_app
from tests.builders import (
    DOWNTOWN,
    assigned_trip,
    flushing_server,
    live_server,
    make_driver,
    make_rider,
    request_trip,
    socket,
)
from tests.polling import until
from tests.servers import ThrowawayRedis, UnixRelay, postgres_relay


def ws_url(base_url: str, path: str, token: str) -> str:
    return base_url.replace("http://", "ws://", 1) + f"{path}?token={token}"


async def handshake_status(base_url: str, path: str, token: str) -> tuple[int, dict[str, Any]]:
    """The status and problem body of a refused upgrade (fails if the socket is accepted)."""
    try:
        async with connect(ws_url(base_url, path, token), open_timeout=10):
            pass
    except InvalidStatus as refused:
        response = refused.response
        assert response.headers["Content-Type"] == "application/problem+json"
        return response.status_code, {
            **json.loads(response.body or b"{}"),
            "retry_after": response.headers.get("Retry-After"),
        }
    raise AssertionError("the socket was accepted")


async def close_code(client: Any, timeout_s: float = 15.0) -> int:
    """Reads until the server closes the socket; answers the close code."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                await client.connection.recv()
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return closed.rcvd.code
    raise AssertionError("unreachable")


# --- PostgreSQL unreachable ------------------------------------------------------------------


async def test_with_postgres_down_http_and_sockets_answer_503_and_recover(
    settings: Settings, engine: AsyncEngine, admin_headers: dict[str, str], short_tmp: Path
) -> None:
    async with postgres_relay(settings, short_tmp) as (proxy, database_url):
        app = create_app(settings.model_copy(update={"database_url": database_url}))
        async with live_server(app) as base_url, AsyncClient(base_url=base_url) as http:
            rider = await make_rider(http)
            await proxy.stop()

            refused = await http.post("/v1/riders", json={"name": "Too Soon"})
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["retry-after"] == "5"
            body = refused.json()
            assert (body["type"], body["dependency"]) == ("dependency_unavailable", "database")
            assert "Traceback" not in refused.text
            reading = await http.get(f"/v1/trips/{uuid.uuid4()}", headers=rider.headers)
            assert reading.status_code == 503
            status, problem = await handshake_status(base_url, "/v1/ws/rider", rider.token)
            assert (status, problem["type"], problem["retry_after"]) == (
                503,
                "dependency_unavailable",
                "5",
            )

            await proxy.start()
            assert (await http.post("/v1/riders", json={"name": "Later"})).status_code == 201
            async with socket(base_url, "/v1/ws/rider", rider.token) as back:
                assert back.seen[0]["type"] == "hello"


async def test_positions_are_buffered_bounded_through_an_outage_and_written_after(
    settings: Settings,
    engine: AsyncEngine,
    client: AsyncClient,
    admin_headers: dict[str, str],
    short_tmp: Path,
) -> None:
    from coop.db import create_engine, utcnow
    from coop.redis_client import create_redis
    from dispatch.locations.ingest import LocationIngest
    from dispatch.locations.models import TrailPoint

    drivers = [await make_driver(client, admin_headers, name=f"D{i}") for i in range(3)]
    app = client._transport.app  # type: ignore[attr-defined]
    for driver in drivers:
        await assigned_trip(app, client, await make_rider(client, f"R {driver.id}"), driver)
    async with postgres_relay(settings, short_tmp) as (proxy, database_url):
        proxied = create_engine(database_url, pool_size=1, max_overflow=0)
        redis = create_redis(settings.redis_url)
        ingest = LocationIngest(engine=proxied, redis=redis, grace_s=25, max_trail_points=10)
        try:
            await proxy.stop()
            for i in range(8):  # 24 points for a buffer of 10: the 14 oldest go
                for n, driver in enumerate(drivers):
                    ingest.report(
                        driver.id,
                        lat=45.50 + i * 0.001,
                        lon=-73.57 + n * 0.01,
                        heading_deg=float(i),
                        speed_mps=None,
                        received_at=utcnow(),
                    )
                with pytest.raises(Exception):  # noqa: B017  (whatever the driver raises)
                    await asyncio.wait_for(ingest.flush(), 10)
            assert ingest.buffered_trail_points == 10
            assert ingest.trail_points_dropped == 14
            assert ingest.pending == 3
            await proxy.start()
            await ingest.flush()
            assert (ingest.pending, ingest.buffered_trail_points) == (0, 0)
        finally:
            await ingest.close()
            await proxied.dispose()
            await redis.aclose()
    async with app.state.sessionmaker() as session:
        kept = (await session.scalars(select(TrailPoint).order_by(TrailPoint.recorded_at))).all()
    # The newest ten were kept, in order: rounds 3..7, less the first two points of round 3.
    assert len(kept) == 10
    assert kept[-1].recorded_at >= kept[0].recorded_at
    metrics = (await client.get("/metrics")).text
    assert "coop_location_trail_points_dropped_total" in metrics


# --- Redis unreachable -----------------------------------------------------------------------


async def test_with_redis_down_sockets_are_told_to_reconnect_and_refused_until_it_is_back(
    settings: Settings, engine: AsyncEngine, admin_headers: dict[str, str], short_tmp: Path
) -> None:
    redis = ThrowawayRedis(short_tmp)
    await redis.start()
    app = create_app(settings.model_copy(update={"redis_url": redis.url}))
    try:
        async with live_server(app) as base_url, AsyncClient(base_url=base_url) as http:
            rider = await make_rider(http)
            async with socket(base_url, "/v1/ws/rider", rider.token) as rider_ws:
                redis.stop()
                # Frames published meanwhile would be lost: the socket is closed for a resync.
                assert await close_code(rider_ws) == 1012
            await until(lambda: not app.state.hub.connected, what="the hub noticing")
            status, problem = await handshake_status(base_url, "/v1/ws/rider", rider.token)
            assert (status, problem["type"], problem["dependency"]) == (
                503,
                "dependency_unavailable",
                "redis",
            )
            await redis.start()
            await until(lambda: app.state.hub.connected, what="the hub resubscribing")
            async with socket(base_url, "/v1/ws/rider", rider.token) as again:
                assert again.seen[0]["type"] == "hello" and again.last_seq == 1
            metrics = (await http.get("/metrics")).text
            assert "coop_ws_resyncs_total 1.0" in metrics
            assert "coop_ws_redis_losses_total 1.0" in metrics
    finally:
        redis.stop()


async def test_a_frame_redis_did_not_take_gets_its_socket_resynced_on_another_worker(
    settings: Settings, engine: AsyncEngine, admin_headers: dict[str, str], short_tmp: Path
) -> None:
    redis = ThrowawayRedis(short_tmp)
    await redis.start()
    relay = UnixRelay(short_tmp / "relay.sock", redis.socket)
    await relay.start()
    # The rider's socket is on `holder`; `cut_off` answers HTTP through a relay to the same Redis.
    holder = create_app(settings.model_copy(update={"redis_url": redis.url}))
    cut_off = create_app(settings.model_copy(update={"redis_url": relay.redis_url}))
    try:
        async with (
            live_server(holder) as holder_url,
            live_server(cut_off) as cut_off_url,
            AsyncClient(base_url=cut_off_url) as http,
            AsyncExitStack() as stack,
        ):
            rider = await make_rider(http)
            trip = await request_trip(http, rider)
            rider_ws = await stack.enter_async_context(
                socket(holder_url, "/v1/ws/rider", rider.token)
            )
            await rider_ws.trip("requested")
            await relay.cut()
            # The cancel is recorded (the database is up); its frame cannot be published.
            cancelled = await http.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)
            assert cancelled.status_code == 200
            assert cut_off.state.hub.lost.lost == 1
            await relay.start()
            # Once the cut-off worker reaches Redis again it asks for a resync of that channel.
            assert await close_code(rider_ws) == 1012
            async with socket(holder_url, "/v1/ws/rider", rider.token) as again:
                assert again.seen == [again.seen[0]]  # a hello, and no open trip any more
                assert again.seen[0]["type"] == "hello"
            assert cut_off.state.hub.lost.take() == (False, [])
    finally:
        await relay.cut()
        redis.stop()


# --- offers and their delivery ---------------------------------------------------------------


async def test_an_offer_counts_as_delivered_once_the_drivers_socket_wrote_it(
    settings: Settings, engine: AsyncEngine, admin_headers: dict[str, str]
) -> None:
    from datetime import timedelta

    from coop.db import utcnow

    app = create_app(settings)
    async with live_server(app) as base_url, AsyncClient(base_url=base_url) as http:
        rider = await make_rider(http)
        driver = await make_driver(http, admin_headers)
        async with socket(base_url, "/v1/ws/driver", driver.token) as driver_ws:
            await driver_ws.send({"type": "location", **DOWNTOWN})
            await driver_ws.send({"type": "availability", "available": True})
            await driver_ws.next("availability", available=True)
            await app.state.locations.flush()
            await request_trip(http, rider)
            [made] = (await app.state.matcher.run_batch()).offers
            frame = await driver_ws.next("offer")
            assert frame["offer_id"] == str(made.id)

            async def delivered() -> bool:
                async with app.state.sessionmaker() as session:
                    offer = await session.get(Offer, made.id, populate_existing=True)
                    return offer is not None and offer.delivered_at is not None

            await until(delivered, what="the offer's receipt")
            # Seen and left unanswered: it expires, and the driver is not offered it again.
            report = await app.state.matcher.run_batch(now=utcnow() + timedelta(seconds=16))
            assert report.expired_offers == 1 and report.offers == []
            withdrawn = await driver_ws.next("offer_withdrawn")
            assert withdrawn["reason"] == "expired"
            async with app.state.sessionmaker() as session:
                offer = await session.get(Offer, made.id)
                assert offer is not None and offer.status is OfferStatus.expired


async def test_an_offer_that_never_reached_the_socket_ends_undelivered_and_is_made_again(
    settings: Settings, engine: AsyncEngine, admin_headers: dict[str, str]
) -> None:
    from datetime import timedelta

    from coop.db import utcnow

    app = create_app(settings)
    async with live_server(app) as base_url, AsyncClient(base_url=base_url) as http:
        rider = await make_rider(http)
        driver = await make_driver(http, admin_headers)
        async with socket(base_url, "/v1/ws/driver", driver.token) as driver_ws:
            await driver_ws.send({"type": "location", **DOWNTOWN})
            await driver_ws.send({"type": "availability", "available": True})
            await driver_ws.next("availability", available=True)
            await app.state.locations.flush()
            await request_trip(http, rider)
            # The offer's frame goes nowhere (its publish lost between workers, say): the hub
            # holds no socket for the channel while the offer's frame goes by.
            hub = app.state.hub
            channel = f"coop:ws:driver:{driver.id}"
            marker = Connection(queue_size=4, label="marker")
            await hub.register("coop:ws:marker", marker)
            marker.release([])
            hidden = hub._local.pop(channel)
            try:
                [lost] = (await app.state.matcher.run_batch()).offers
                # Published after the offer, so handled after it by the hub's listener.
                await app.state.redis.publish("coop:ws:marker", '{"type":"marker"}')
                await asyncio.wait_for(marker.queue.get(), 5)
            finally:
                hub._local[channel] = hidden
            report = await app.state.matcher.run_batch(now=utcnow() + timedelta(seconds=16))
            # At once back to matching, with the same driver still eligible.
            assert report.expired_offers == 1
            [again] = report.offers
            assert (again.trip_id, again.driver_id) == (lost.trip_id, driver.id)
            withdrawn = await driver_ws.next("offer_withdrawn")
            assert (withdrawn["offer_id"], withdrawn["reason"]) == (str(lost.id), "undelivered")
            assert (await driver_ws.next("offer"))["offer_id"] == str(again.id)
            async with app.state.sessionmaker() as session:
                offer = await session.get(Offer, lost.id)
                assert offer is not None and offer.status is OfferStatus.undelivered
            accepted = await http.post(f"/v1/offers/{lost.id}/accept", headers=driver.headers)
            assert (accepted.status_code, accepted.json()["type"]) == (409, "offer_expired")


# --- completion across workers ---------------------------------------------------------------


async def test_completion_meters_the_trail_buffered_by_the_worker_holding_the_socket(
    settings: Settings, engine: AsyncEngine, admin_headers: dict[str, str]
) -> None:
    # Neither worker flushes by itself (background tasks are off in tests): only the request
    # the completing worker sends can get the socket worker's points in.
    holder, completer = create_app(settings), create_app(settings)
    async with (
        live_server(holder) as holder_url,
        live_server(completer) as completer_url,
        AsyncClient(base_url=completer_url) as http,
    ):
        rider = await make_rider(http)
        driver = await make_driver(http, admin_headers)
        trip = await assigned_trip(completer, http, rider, driver)
        for move in ("arrived", "start"):
            response = await http.post(f"/v1/trips/{trip['id']}/{move}", headers=driver.headers)
            assert response.status_code == 200, response.text
        # A few metres apart from where the driver was placed, and sent 150 ms apart: a report
        # is taken at most every 100 ms, and only at a believable speed.
        route = [(45.5017 + n * 0.00003, -73.5673) for n in range(4)]
        async with socket(holder_url, "/v1/ws/driver", driver.token) as driver_ws:
            for lat, lon in route:
                await driver_ws.send({"type": "location", "lat": lat, "lon": lon})
                await asyncio.sleep(0.15)  # the protocol's pace, not a wait for an event
            # The echo comes once everything sent before it was taken in.
            await driver_ws.send({"type": "availability", "available": False})
            await driver_ws.next("availability", available=False)
            assert holder.state.locations.buffered_trail_points == len(route)
            done = await http.post(f"/v1/trips/{trip['id']}/complete", headers=driver.headers)
            assert done.status_code == 200, done.text
    expected = sum(
        haversine_m(a[0], a[1], b[0], b[1]) for a, b in zip(route, route[1:], strict=False)
    )
    assert done.json()["fare"]["distance_m"] == round(expected)


# --- Overload: backpressure ------------------------------------------------------------------


async def test_when_flushes_fall_behind_drivers_are_asked_to_report_less_and_the_rest_is_shed(
    settings: Settings, engine: AsyncEngine, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    async with flushing_server(settings) as (base_url, ingest):
        async with (
            socket(base_url, "/v1/ws/driver", driver.token) as ws,
            socket(base_url, "/v1/ws/driver", driver.token) as again,
        ):
            sent = 0

            async def report() -> None:
                nonlocal sent
                sent += 1
                await ws.send(
                    {
                        "type": "location",
                        "lat": DOWNTOWN["lat"] + sent * 1e-5,
                        "lon": DOWNTOWN["lon"],
                    }
                )

            async with engine.connect() as blocker:
                # Flushes cannot finish while the table is locked: they fall behind.
                await blocker.execute(
                    text("LOCK TABLE location_driver_position IN ACCESS EXCLUSIVE MODE")
                )
                notice: dict[str, Any] | None = None
                deadline = time.monotonic() + 20
                while notice is None:
                    assert time.monotonic() < deadline, "no overloaded frame within 20 s"
                    await report()
                    with contextlib.suppress(TimeoutError):
                        notice = await ws.next("error", code="overloaded", timeout_s=0.15)
                # The socket is asked to report less often, in so many milliseconds.
                assert notice["report_every_ms"] >= MIN_SHED_GAP_S * 1000
                shed = ingest.reports_shed
                for _ in range(4):  # faster than asked: shed, and said once only
                    await report()
                    await asyncio.sleep(0.15)
                assert ingest.reports_shed > shed
                await ws.nothing("error")
                # The other socket goes on sending far faster than asked: it is closed
                # with 1013 (try again later), within a bound.
                deadline = time.monotonic() + 15
                while True:
                    assert time.monotonic() < deadline, "an ignoring socket kept open"
                    try:
                        await again.send(
                            {
                                "type": "location",
                                "lat": DOWNTOWN["lat"] + sent * 1e-5,
                                "lon": DOWNTOWN["lon"],
                            }
                        )
                        sent += 1
                        await again.next("pong", timeout_s=0.15)
                    except TimeoutError:
                        continue
                    except ConnectionClosed as closed:
                        assert closed.rcvd is not None and closed.rcvd.code == 1013
                        break
                await blocker.rollback()
            # Once the database takes writes again, nothing taken in stays behind.
            await until(lambda: ingest.pending == 0, what="the buffer emptying")
            await ws.send({"type": "ping"})
            await ws.next("pong")  # the first socket, which heeded, was kept throughout
        async with AsyncClient(base_url=base_url) as http:
            metrics = (await http.get("/metrics")).text
        assert "coop_ws_closed_overloaded_total 1.0" in metrics
        assert f"coop_location_reports_shed_total {float(ingest.reports_shed)}" in metrics


async def test_reports_that_waited_long_before_being_read_make_congestion_and_are_dropped(
    settings: Settings, engine: AsyncEngine, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Reading behind is seen by the frames' `ts` before any flush slows down; while shedding,
    a frame that waited over STALE_REPORT_S is dropped without counting against its socket,
    and a fresh one of the same socket is still taken."""
    drivers = [await make_driver(client, admin_headers) for _ in range(3)]
    async with flushing_server(settings) as (base_url, ingest):
        async with (
            socket(base_url, "/v1/ws/driver", drivers[0].token) as first,
            socket(base_url, "/v1/ws/driver", drivers[1].token) as second,
            socket(base_url, "/v1/ws/driver", drivers[2].token) as third,
        ):
            sockets = [first, second, third]
            sent = 0

            async def report(ws: Any, late_s: float) -> None:
                nonlocal sent
                sent += 1
                stamp = datetime.now(UTC) - timedelta(seconds=late_s)
                await ws.send(
                    {
                        "type": "location",
                        "lat": DOWNTOWN["lat"] + sent * 1e-6,
                        "lon": DOWNTOWN["lon"],
                        "ts": stamp.isoformat(),
                    }
                )

            for ws in sockets:  # what each socket's reports usually take
                await report(ws, 0.0)
            assert not ingest.congested
            # The frames now read were stamped 3 s ago: they waited (as behind a backlog)
            # on every socket; within a bound the worker sees it reads behind, though
            # its flushes are quick.
            notice: dict[str, Any] | None = None
            deadline = time.monotonic() + 20
            while notice is None:
                assert time.monotonic() < deadline, "no overloaded frame within 20 s"
                for ws in sockets:
                    await report(ws, 3.0)
                await asyncio.sleep(0.03)
                with contextlib.suppress(TimeoutError):
                    notice = await first.next("error", code="overloaded", timeout_s=0.01)
            assert ingest.queue_delay_s > CONGESTED_QUEUE_S
            stale = ingest.reports_stale
            # Late frames go on arriving, past the grace and the count that would close a
            # socket sending faster than asked: they are dropped, and the socket kept (they
            # were sent, by their stamps, within the protocol's 100 ms).
            ends = time.monotonic() + IGNORED_ASK_GRACE_S + 0.5
            while time.monotonic() < ends:
                await report(first, 3.0)
                await asyncio.sleep(0.12)
            assert ingest.reports_stale >= stale + IGNORED_ASK_SHEDS
            await first.send({"type": "ping"})
            await first.next("pong")
            # A fresh report, past the gap asked, is taken and written.
            await asyncio.sleep(ingest.gap_for(1 + GAP_SPREAD))
            await report(first, 0.0)
            latest = (DOWNTOWN["lat"] + sent * 1e-6, DOWNTOWN["lon"])

            async def written() -> bool:
                async with engine.connect() as connection:
                    row = (
                        await connection.execute(
                            text(
                                "SELECT ST_Y(position::geometry) FROM "
                                "location_driver_position WHERE driver_id = :id"
                            ),
                            {"id": drivers[0].id},
                        )
                    ).one_or_none()
                return row is not None and abs(row[0] - latest[0]) < 1e-9

            await until(written, what="the fresh report written")
        async with AsyncClient(base_url=base_url) as http:
            metrics = (await http.get("/metrics")).text
        assert f"coop_location_reports_stale_total {float(ingest.reports_stale)}" in metrics
        assert "coop_ws_closed_overloaded_total 0.0" in metrics
