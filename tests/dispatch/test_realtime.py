"""The WebSocket routes over real sockets: authentication, frames good and bad, pings, the state
a client gets on (re)connect, pushes of offers and trips, and dropping a client that reads too
slowly."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from coop import pubsub
from coop.db import utcnow
from coop.frames import Frame
from coop.settings import Settings
from dispatch.locations import service as locations_service
from dispatch.realtime.hub import CLOSE_TOO_SLOW
from dispatch.trips.models import Offer
from server.app import create_app
from tests.builders import (
    DOWNTOWN,
    LONGUEUIL,
    PLATEAU,
    Account,
    assigned_trip,
    go_online,
    live_server,
    make_driver,
    make_rider,
    offer_to,
    place_driver,
    request_trip,
    socket,
)
from tests.polling import until


@dataclass
class Served:
    app: FastAPI
    base_url: str
    http: AsyncClient

    def ws_url(self, path: str) -> str:
        return self.base_url.replace("http://", "ws://", 1) + path


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[Served]:
    app = create_app(settings)
    async with live_server(app) as base_url, AsyncClient(base_url=base_url) as http:
        yield Served(app, base_url, http)


@pytest_asyncio.fixture
async def served(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Served]:
    async with serve(settings) as served:
        yield served


@pytest_asyncio.fixture
async def driver(served: Served, admin_headers: dict[str, str]) -> Account:
    return await make_driver(served.http, admin_headers)


@pytest_asyncio.fixture
async def rider(served: Served) -> Account:
    return await make_rider(served.http)


# --- the handshake --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "who", "status"),
    [
        ("/v1/ws/driver", "nobody", 401),
        ("/v1/ws/driver", "bad token", 401),
        ("/v1/ws/driver", "rider", 403),
        ("/v1/ws/driver", "admin", 403),
        ("/v1/ws/rider", "driver", 403),
        ("/v1/ws/rider", "nobody", 401),
    ],
)
async def test_sockets_refuse_the_wrong_callers_with_a_problem(
    served: Served,
    driver: Account,
    rider: Account,
    admin_headers: dict[str, str],
    path: str,
    who: str,
    status: int,
) -> None:
    headers = {
        "nobody": {},
        "bad token": {"Authorization": "Bearer not-a-token"},
        "rider": rider.headers,
        "driver": driver.headers,
        "admin": admin_headers,
    }[who]
    with pytest.raises(InvalidStatus) as refused:
        async with connect(served.ws_url(path), additional_headers=headers, open_timeout=5):
            pass
    response = refused.value.response
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert json.loads(response.body)["status"] == status


async def test_a_token_in_the_query_string_works_and_hello_comes_first(
    served: Served, driver: Account
) -> None:
    url = served.ws_url(f"/v1/ws/driver?token={driver.token}")
    async with connect(url, open_timeout=5) as connection:
        hello = json.loads(await asyncio.wait_for(connection.recv(), 5))
    assert hello == {
        "seq": 1,
        "type": "hello",
        "role": "driver",
        "id": str(driver.id),
        "ping_interval_s": served.app.state.settings.ws_ping_interval_s,
        "available": False,
    }


# --- frames from clients --------------------------------------------------------------------


BAD_DRIVER_FRAMES = [
    ("not json at all", "bad_message", "not valid JSON"),
    ("[1, 2]", "bad_message", "JSON object"),
    ('{"lat": 45.5}', "bad_message", "'type'"),
    ('{"type": 7}', "bad_message", "'type'"),
    ('{"type": "teleport"}', "bad_message", "Unknown frame type 'teleport'"),
    ('{"type": "location", "lat": 95, "lon": -73.5}', "bad_message", "lat"),
    ('{"type": "location", "lat": 45.5}', "bad_message", "lon"),
    ('{"type": "location", "lat": "NaN", "lon": -73.5}', "bad_message", "lat"),
    ('{"type": "location", "lat": 45.5, "lon": -73.56, "speed_mps": -1}', "bad_message", "speed"),
    ('{"type": "location", "lat": 45.5, "lon": -73.56, "heading": 400}', "bad_message", "heading"),
    ('{"type": "location", "lat": 45.5, "lon": -73.56, "ts": "yesterday"}', "bad_message", "ts"),
    (
        '{"type": "location", "lat": 45.5, "lon": -73.56, "ts": "2026-01-01T10:00:00"}',
        "bad_message",
        "offset",
    ),
    (
        '{"type": "location", "lat": 45.5, "lon": -73.56, "ts": "2999-01-01T00:00:00Z"}',
        "bad_message",
        "future",
    ),
    ('{"type": "location", "lat": 45.5, "lon": -73.56, "alt": 30}', "bad_message", "alt"),
    ('{"type": "availability", "available": "yes"}', "bad_message", "available"),
    ('{"type": "availability"}', "bad_message", "available"),
    (
        json.dumps({"type": "location", **LONGUEUIL}),
        "out_of_service_area",
        "outside the service area",
    ),
]


async def test_bad_frames_get_an_error_frame_and_the_connection_stays(
    served: Served, driver: Account
) -> None:
    async with socket(served.base_url, "/v1/ws/driver", driver.token) as ws:
        for raw, code, words in BAD_DRIVER_FRAMES:
            if '"location"' in raw:
                # One location frame per 100 ms is let in; the wait is the protocol's rate.
                await asyncio.sleep(0.11)
            await ws.send(raw)
            error = await ws.next("error")
            assert error["code"] == code, (raw, error)
            assert words in error["message"], (raw, error)
        await ws.connection.send(b"\x00binary")
        assert "not binary" in (await ws.next("error"))["message"]
        await ws.send(
            json.dumps({"type": "location", "lat": 45.5, "lon": -73.56, "pad": "x" * 5000})
        )
        assert "at most" in (await ws.next("error"))["message"]
        # Still open, still served: a ping is answered, a good position is taken in.
        await ws.send({"type": "ping"})
        await ws.next("pong")
        await asyncio.sleep(0.11)  # the protocol's rate: one location frame per 100 ms
        await go_online(ws, DOWNTOWN)
    assert served.app.state.locations.reports_received == 1  # only the good one


async def test_a_rider_socket_takes_no_driver_frames(served: Served, rider: Account) -> None:
    async with socket(served.base_url, "/v1/ws/rider", rider.token) as ws:
        await ws.send({"type": "location", **DOWNTOWN})
        assert "this socket takes ping, pong" in (await ws.next("error"))["message"]
        await ws.send({"type": "availability", "available": True})
        assert (await ws.next("error"))["code"] == "bad_message"
        await ws.send({"type": "pong"})
        await ws.send({"type": "ping"})
        await ws.next("pong")
    assert served.app.state.locations.reports_received == 0


async def test_availability_is_recorded_and_echoed(
    served: Served, driver: Account, session: AsyncSession
) -> None:
    async with socket(served.base_url, "/v1/ws/driver", driver.token) as ws:
        await go_online(ws, DOWNTOWN)
        await served.app.state.locations.flush()
        presence = await locations_service.presence(session=session, driver_id=driver.id)
        assert presence is not None and presence.available
        assert presence.position is not None
        assert (presence.position.lat, presence.position.lon) == (DOWNTOWN["lat"], DOWNTOWN["lon"])
        await ws.send({"type": "availability", "available": False})
        await ws.next("availability", available=False)
        presence = await locations_service.presence(session=session, driver_id=driver.id)
        assert presence is not None and not presence.available


async def test_reports_arriving_late_do_not_replace_newer_ones(
    served: Served, driver: Account, session: AsyncSession
) -> None:
    async with socket(served.base_url, "/v1/ws/driver", driver.token) as ws:
        now = utcnow()
        await ws.send({"type": "location", **PLATEAU, "ts": now.isoformat()})
        stale = (now - timedelta(seconds=30)).isoformat()
        await ws.send({"type": "location", **DOWNTOWN, "ts": stale})
        await ws.send({"type": "availability", "available": True})
        await ws.next("availability")
    await served.app.state.locations.flush()
    presence = await locations_service.presence(session=session, driver_id=driver.id)
    assert presence is not None and presence.position is not None
    assert (presence.position.lat, presence.position.lon) == (PLATEAU["lat"], PLATEAU["lon"])


# --- pings and presence ---------------------------------------------------------------------


async def test_the_server_pings_and_keeps_a_connected_driver_present(
    settings: Settings, engine: AsyncEngine, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    async with serve(settings.model_copy(update={"ws_ping_interval_s": 0.2})) as served:
        driver = await make_driver(served.http, admin_headers)
        async with socket(served.base_url, "/v1/ws/driver", driver.token) as ws:
            await go_online(ws, DOWNTOWN)
            await served.app.state.locations.flush()
            first = await locations_service.presence(session=session, driver_id=driver.id)
            assert first is not None
            await ws.next("ping", timeout_s=2)
            await ws.next("ping", timeout_s=2)
            await served.app.state.locations.flush()
            later = await locations_service.presence(session=session, driver_id=driver.id)
            assert later is not None and later.last_seen_at > first.last_seen_at
            assert later.position == first.position  # a ping moves nobody


async def test_a_disconnected_driver_stays_offerable_only_for_the_grace_period(
    served: Served, driver: Account, rider: Account, session: AsyncSession
) -> None:
    async with socket(served.base_url, "/v1/ws/driver", driver.token) as ws:
        await go_online(ws, DOWNTOWN)
    await served.app.state.locations.flush()
    await until(lambda: served.app.state.hub.connections == 0)
    await request_trip(served.http, rider)
    grace = served.app.state.settings.driver_grace_s
    # A batch after the grace period finds nobody; one within it finds the driver.
    late = await served.app.state.matcher.run_batch(now=utcnow() + timedelta(seconds=grace + 1))
    assert (late.candidates, late.offers) == (0, [])
    soon = await served.app.state.matcher.run_batch()
    assert [o.driver_id for o in soon.offers] == [driver.id]


# --- state on (re)connect -------------------------------------------------------------------


async def test_a_reconnecting_driver_gets_their_open_offer_then_their_trip(
    served: Served, driver: Account, rider: Account
) -> None:
    app, http = served.app, served.http
    trip = await request_trip(http, rider)
    await place_driver(app, driver.id, DOWNTOWN)
    offer_id = await offer_to(app, driver)
    async with socket(served.base_url, "/v1/ws/driver", driver.token) as ws:
        offer = await ws.next("offer", timeout_s=2)
        assert (offer["offer_id"], offer["trip_id"]) == (str(offer_id), trip["id"])
        assert ws.seen[0]["type"] == "hello" and ws.seen[0]["available"] is True
    accepted = await http.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
    assert accepted.status_code == 200
    async with socket(served.base_url, "/v1/ws/driver", driver.token) as ws:
        pushed = await ws.trip("assigned", timeout_s=2)
        assert pushed["id"] == trip["id"]
        await ws.nothing("offer")


async def test_a_reconnecting_rider_gets_the_trip_and_where_the_driver_is(
    served: Served, driver: Account, rider: Account
) -> None:
    trip = await assigned_trip(served.app, served.http, rider, driver, at=PLATEAU)
    async with socket(served.base_url, "/v1/ws/rider", rider.token) as ws:
        pushed = await ws.trip("assigned", timeout_s=2)
        assert pushed["id"] == trip["id"] and pushed["driver"]["id"] == str(driver.id)
        live = await ws.next("driver_location", timeout_s=2)
        eta_s = live.pop("eta_s")
        assert live == {
            "type": "driver_location",
            "trip_id": trip["id"],
            **PLATEAU,
            "heading_to": "pickup",
        }
        assert isinstance(eta_s, int) and eta_s >= 0
        assert [f["type"] for f in ws.seen] == ["hello", "trip", "driver_location"]


async def test_a_client_without_a_trip_gets_only_hello(served: Served, rider: Account) -> None:
    async with socket(served.base_url, "/v1/ws/rider", rider.token) as ws:
        await ws.nothing("trip")
        assert [f["type"] for f in ws.seen] == ["hello"]


# --- pushes ---------------------------------------------------------------------------------


async def test_offers_that_lapse_or_are_called_off_are_withdrawn_on_the_drivers_socket(
    served: Served, admin_headers: dict[str, str]
) -> None:
    app, http = served.app, served.http
    driver = await make_driver(http, admin_headers)
    async with socket(served.base_url, "/v1/ws/driver", driver.token) as ws:
        await go_online(ws, DOWNTOWN)
        await app.state.locations.flush()
        # Expired.
        first = await request_trip(http, await make_rider(http, "A"))
        await app.state.matcher.run_batch()
        offer = await ws.next("offer")
        assert offer["trip_id"] == first["id"]

        # The worker records that the socket wrote it just after the write: an offer expiring
        # before that record would be `undelivered`, not `expired`.
        async def delivered() -> bool:
            async with app.state.sessionmaker() as session:
                seen = await session.get(Offer, uuid.UUID(offer["offer_id"]))
                return seen is not None and seen.delivered_at is not None

        await until(delivered, what="the offer's receipt")
        await app.state.matcher.run_batch(now=utcnow() + timedelta(seconds=16))
        withdrawn = await ws.next("offer_withdrawn")
        assert withdrawn == {
            "type": "offer_withdrawn",
            "offer_id": offer["offer_id"],
            "reason": "expired",
        }
        # Cancelled by the rider.
        rider = await make_rider(http, "B")
        second = await request_trip(http, rider)
        await app.state.matcher.run_batch()
        offer = await ws.next("offer", trip_id=second["id"])
        assert (
            await http.post(f"/v1/trips/{second['id']}/cancel", headers=rider.headers)
        ).status_code == 200
        assert (await ws.next("offer_withdrawn"))["reason"] == "cancelled"
        # The driver goes off duty.
        third = await request_trip(http, await make_rider(http, "C"))
        await app.state.matcher.run_batch()
        offer = await ws.next("offer", trip_id=third["id"])
        await ws.send({"type": "availability", "available": False})
        withdrawn = await ws.next("offer_withdrawn")
        assert (withdrawn["offer_id"], withdrawn["reason"]) == (offer["offer_id"], "unavailable")
        # And the trip goes to the next batch, to nobody now.
        assert (await app.state.matcher.run_batch()).offers == []


async def test_the_rider_hears_of_an_unfulfilled_request_and_the_driver_of_a_cancel(
    served: Served, driver: Account, session: AsyncSession
) -> None:
    app, http = served.app, served.http
    lonely = await make_rider(http, "Lonely")
    async with socket(served.base_url, "/v1/ws/rider", lonely.token) as ws:
        trip = await request_trip(http, lonely)
        await ws.trip("requested")
        await app.state.matcher.run_batch(now=utcnow() + timedelta(seconds=301))
        assert (await ws.trip("unfulfilled"))["id"] == trip["id"]

    rider = await make_rider(http, "Fickle")
    trip = await assigned_trip(app, http, rider, driver)
    async with socket(served.base_url, "/v1/ws/driver", driver.token) as ws:
        await ws.trip("assigned")
        cancelled = await http.post(
            f"/v1/trips/{trip['id']}/cancel", json={"reason": "found a ride"}, headers=rider.headers
        )
        assert cancelled.status_code == 200
        pushed = await ws.trip("cancelled")
        assert (pushed["cancel_reason"], pushed["cancelled_by"]) == ("found a ride", "rider")


class Note(Frame):
    """A frame another package might send (any `Frame` goes through the same channels)."""

    type: Literal["note"]
    n: int


async def test_other_packages_push_through_the_same_channels(
    served: Served, driver: Account
) -> None:
    async with socket(served.base_url, "/v1/ws/driver", driver.token) as ws:
        await pubsub.to_driver(served.app.state.redis, driver.id, Note(type="note", n=1))
        assert await ws.next("note") == {"type": "note", "n": 1}


# --- slow clients ---------------------------------------------------------------------------


async def test_a_client_that_reads_too_slowly_is_dropped_with_4008(
    settings: Settings, engine: AsyncEngine, admin_headers: dict[str, str]
) -> None:
    async with serve(settings.model_copy(update={"ws_send_queue_size": 4})) as served:
        driver = await make_driver(served.http, admin_headers)
        hub = served.app.state.hub
        url = served.ws_url("/v1/ws/driver")
        async with connect(
            url, additional_headers=driver.headers, max_queue=1, open_timeout=5, ping_interval=None
        ) as connection:
            json.loads(await connection.recv())  # hello
            channel = pubsub.driver_channel(driver.id)
            big = json.dumps({"type": "offer_withdrawn", "offer_id": "x", "reason": "y" * 65_536})
            # The client reads nothing: socket buffers fill, then the bounded queue, then the
            # server gives up on the client instead of holding more.
            for _ in range(20_000):
                hub.deliver(channel, big)
                if hub.dropped_slow:
                    break
                await asyncio.sleep(0.001)
            assert hub.dropped_slow >= 1
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(connection.recv(), 10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == CLOSE_TOO_SLOW
            assert "too slow" in closed.value.rcvd.reason
        await until(lambda: hub.connections == 0)


async def test_many_sockets_of_one_driver_all_hear_and_unsubscribe_cleanly(
    served: Served, driver: Account
) -> None:
    hub = served.app.state.hub
    async with AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(socket(served.base_url, "/v1/ws/driver", driver.token))
            for _ in range(3)
        ]
        assert hub.connections == 3
        await pubsub.to_driver(served.app.state.redis, driver.id, Note(type="note", n=1))
        for ws in sockets:
            assert (await ws.next("note"))["n"] == 1
    await until(lambda: hub.connections == 0)
    # Nobody listens any more: a publish reaches no one and nothing is kept.
    receivers = await served.app.state.redis.publish(pubsub.driver_channel(driver.id), "{}")
    assert receivers == 0


async def test_dispatch_figures_are_in_the_metrics(served: Served, driver: Account) -> None:
    async with socket(served.base_url, "/v1/ws/driver", driver.token) as ws:
        await go_online(ws, DOWNTOWN)
        await served.app.state.locations.flush()
        text_ = (await served.http.get("/metrics")).text
    assert "coop_ws_connections 1.0" in text_
    assert "coop_location_reports_total 1.0" in text_
    assert "coop_location_flushes_total 1.0" in text_
    assert "coop_matcher_leading 0.0" in text_  # tests run no matcher loop
