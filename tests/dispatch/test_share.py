"""Share my trip over the real protocol (docs/safety.md): links made and revoked by a party,
read by anyone holding one, refused alike when they never existed, were revoked or expired, the
sharer told of the first opening over their socket, and the limits on guessing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from coop.db import utcnow
from coop.observability import redact
from coop.settings import Settings
from dispatch.safety import share
from dispatch.safety.share_models import TripShare
from server.app import create_app
from tests.builders import (
    DOWNTOWN,
    Account,
    assigned_trip,
    make_driver,
    make_rider,
    north,
    socket,
)
from tests.polling import until

SHARED_KEYS = {
    "status",
    "over",
    "driver",
    "vehicle",
    "position",
    "heading_to",
    "target",
    "eta_s",
    "ended_at",
    "expires_at",
}


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


async def _parties(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> tuple[Account, Account, dict[str, Any]]:
    rider = await make_rider(client, "Rosa Quintal")
    driver = await make_driver(client, admin_headers, name="Dana Bélanger")
    trip = await assigned_trip(app, client, rider, driver, at=north(800))
    return rider, driver, trip


async def _share(client: AsyncClient, who: Account, trip_id: str) -> dict[str, Any]:
    made = await client.post(f"/v1/trips/{trip_id}/share", headers=who.headers)
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def test_a_rider_shares_the_trip_and_the_link_shows_only_the_allow_list(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    rider, driver, trip = await _parties(app, client, admin_headers)
    made = await _share(client, rider, trip["id"])
    assert set(made) == {"id", "token", "url", "expires_at"}
    assert made["url"] == f"http://test/t/{made['token']}"
    assert made["expires_at"] is None  # the trip is open: the end is not known yet
    assert len(made["token"]) >= 22  # 144 random bits, URL-safe

    seen = await client.get(f"/v1/shared/{made['token']}")  # no token of any account
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert set(body) == SHARED_KEYS
    assert body["status"] == "assigned" and body["over"] is False
    assert body["driver"] == {"first_name": "Dana", "photo_url": None}
    assert body["vehicle"]["plate"] == "FXK 123"
    assert set(body["vehicle"]) == {"make", "model", "colour", "plate"}
    assert body["heading_to"] == "pickup"
    assert body["target"] == DOWNTOWN
    assert body["position"]["lat"] == pytest.approx(north(800)["lat"])
    assert 60 <= body["eta_s"] <= 600
    # Nothing that names the rider or either account, nor the fare.
    for secret in (str(rider.id), str(driver.id), "Rosa", "Quintal", "Bélanger", trip["id"]):
        assert secret not in seen.text
    assert "fare" not in seen.text and "quote" not in seen.text

    # Stored as its SHA-256 only: a reader of the table cannot open the page.
    row = await session.scalar(select(TripShare))
    assert row is not None
    assert row.token_hash == hashlib.sha256(made["token"].encode()).digest()
    dump = await session.execute(text("SELECT row_to_json(s)::text FROM safety_trip_share s"))
    assert made["token"] not in dump.scalar_one()

    # The maker's export lists the link, without its token; the driver's has none of it.
    export = await client.get("/v1/riders/me/export", headers=rider.headers)
    assert [link["id"] for link in export.json()["trip_shares"]] == [made["id"]]
    assert made["token"] not in export.text
    theirs = await client.get("/v1/drivers/me/export", headers=driver.headers)
    assert theirs.json()["trip_shares"] == []


async def test_the_driver_shares_for_their_own_safety_and_strangers_are_refused(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider, driver, trip = await _parties(app, client, admin_headers)
    mine = await _share(client, driver, trip["id"])
    assert (await client.get(f"/v1/shared/{mine['token']}")).status_code == 200

    stranger = await make_rider(client, "Sam Stranger")
    other_driver = await make_driver(client, admin_headers, name="Other Driver")
    for who in (stranger, other_driver):
        refused = await client.post(f"/v1/trips/{trip['id']}/share", headers=who.headers)
        assert refused.status_code == 403 and refused.json()["type"] == "not_your_trip"
        revoked = await client.delete(
            f"/v1/trips/{trip['id']}/share/{mine['token']}", headers=who.headers
        )
        assert revoked.status_code == 403 and revoked.json()["type"] == "not_your_trip"
    # The rider cannot end the link the driver keeps for their own safety.
    theirs = await client.delete(
        f"/v1/trips/{trip['id']}/share/{mine['token']}", headers=rider.headers
    )
    assert theirs.status_code == 404 and theirs.json()["type"] == "share_not_found"
    assert (await client.get(f"/v1/shared/{mine['token']}")).status_code == 200
    # No token at all, an unknown trip.
    assert (await client.post(f"/v1/trips/{trip['id']}/share")).status_code == 401
    unknown = await client.post(f"/v1/trips/{uuid.uuid4()}/share", headers=rider.headers)
    assert unknown.status_code == 404 and unknown.json()["type"] == "trip_not_found"


async def test_a_revoked_link_answers_as_one_that_never_existed(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider, _, trip = await _parties(app, client, admin_headers)
    made = await _share(client, rider, trip["id"])
    kept = await _share(client, rider, trip["id"])
    path = f"/v1/trips/{trip['id']}/share/{made['token']}"
    assert (await client.delete(path, headers=rider.headers)).status_code == 204
    assert (await client.delete(path, headers=rider.headers)).status_code == 204  # once
    revoked = await client.get(f"/v1/shared/{made['token']}")
    never = await client.get(f"/v1/shared/{share.new_token()}")
    assert revoked.status_code == never.status_code == 404
    assert revoked.json() == never.json()  # no oracle: the same answer, word for word
    assert revoked.json()["type"] == "share_not_found"
    assert (await client.get(f"/v1/shared/{made['token']}/events")).status_code == 404
    # The other link lives on.
    assert (await client.get(f"/v1/shared/{kept['token']}")).status_code == 200
    # A token too long to be one is refused before any lookup.
    assert (await client.get("/v1/shared/" + "a" * 200)).status_code == 422


async def test_the_link_shows_the_end_without_addresses_then_expires_30_minutes_later(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    clock = Clock()
    app.state.clock = clock
    rider, _, trip = await _parties(app, client, admin_headers)
    made = await _share(client, rider, trip["id"])
    cancelled = await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)
    assert cancelled.status_code == 200, cancelled.text
    ended = (await client.get(f"/v1/shared/{made['token']}")).json()
    assert ended["over"] is True and ended["status"] == "cancelled"
    # After the end: no position, no pickup or destination, no ETA.
    assert ended["position"] is None and ended["target"] is None and ended["eta_s"] is None
    assert ended["heading_to"] is None
    ended_at = datetime.fromisoformat(ended["ended_at"])
    assert datetime.fromisoformat(ended["expires_at"]) == ended_at + timedelta(minutes=30)
    # No new link on a trip that is over.
    late = await client.post(f"/v1/trips/{trip['id']}/share", headers=rider.headers)
    assert late.status_code == 409 and late.json()["type"] == "trip_over"

    clock.offset = ended_at + timedelta(minutes=29) - utcnow()
    assert (await client.get(f"/v1/shared/{made['token']}")).status_code == 200
    clock.offset = ended_at + timedelta(minutes=30, seconds=1) - utcnow()
    gone = await client.get(f"/v1/shared/{made['token']}")
    assert gone.status_code == 404 and gone.json()["type"] == "share_not_found"


async def test_each_party_keeps_five_live_links_even_asked_all_at_once(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider, driver, trip = await _parties(app, client, admin_headers)
    answers = await asyncio.gather(
        *(client.post(f"/v1/trips/{trip['id']}/share", headers=rider.headers) for _ in range(9))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * share.LIVE_PER_PARTY + [409] * (9 - share.LIVE_PER_PARTY)
    refused = next(answer for answer in answers if answer.status_code == 409)
    assert refused.json()["type"] == "share_limit_reached"
    # The driver's own links are counted apart.
    await _share(client, driver, trip["id"])
    # Revoking frees a place, up to the number made in all.
    tokens = [answer.json()["token"] for answer in answers if answer.status_code == 201]
    for token in tokens:
        path = f"/v1/trips/{trip['id']}/share/{token}"
        assert (await client.delete(path, headers=rider.headers)).status_code == 204
    for _ in range(share.MADE_PER_PARTY - share.LIVE_PER_PARTY):
        await _share(client, rider, trip["id"])
    over = await client.post(f"/v1/trips/{trip['id']}/share", headers=rider.headers)
    assert over.status_code == 409 and over.json()["type"] == "share_limit_reached"


async def test_the_sharer_is_told_once_when_the_link_is_first_opened(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    from tests.builders import serve

    async with serve(settings) as served:
        http = served.http
        rider, driver, trip = await _parties(served.app, http, admin_headers)
        ours = await _share(http, rider, trip["id"])
        drivers = await _share(http, driver, trip["id"])
        async with (
            socket(served.base_url, "/v1/ws/rider", rider.token) as rider_socket,
            socket(served.base_url, "/v1/ws/driver", driver.token) as driver_socket,
        ):
            opened = await asyncio.gather(
                *(http.get(f"/v1/shared/{ours['token']}") for _ in range(5))
            )
            assert {answer.status_code for answer in opened} == {200}
            frame = await rider_socket.next("share_opened")
            assert frame["trip_id"] == trip["id"] and frame["share_id"] == ours["id"]
            await rider_socket.nothing("share_opened", within_s=0.5)  # once, not five times
            await driver_socket.nothing("share_opened", within_s=0.2)  # not the driver's link
            # The driver's link tells the driver, through the page's route too.
            page = await http.get(f"/t/{drivers['token']}")
            assert page.status_code == 200
            told = await driver_socket.next("share_opened")
            assert told["share_id"] == drivers["id"]
            await rider_socket.nothing("share_opened", within_s=0.2)


async def _events(http: AsyncClient, token: str, into: list[tuple[str, dict[str, Any]]]) -> None:
    """Reads the link's event stream into `into` until the server ends it."""
    async with http.stream("GET", f"/v1/shared/{token}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                into.append((name, json.loads(line[len("data: ") :])))


async def _first(found: list[Any], predicate: Any, what: str) -> Any:
    """The first item of `found` (filled by a reader meanwhile) that matches, once one does."""
    await until(lambda: any(predicate(item) for item in found), what=what)
    return next(item for item in found if predicate(item))


async def test_the_stream_follows_the_car_and_ends_when_the_trip_ends(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    """The race: the trip ends while someone follows it. The stream says so and ends; the link
    still reads the end for 30 minutes, then is gone."""
    from tests.builders import serve

    async with serve(settings) as served:
        http, app = served.http, served.app
        clock = Clock()
        app.state.clock = clock
        rider, driver, trip = await _parties(app, http, admin_headers)
        made = await _share(http, rider, trip["id"])
        events: list[tuple[str, dict[str, Any]]] = []
        reader = asyncio.create_task(_events(http, made["token"], events))
        first = await _first(events, lambda e: e[0] == "trip", "the first trip event")
        assert first[1]["position"]["lat"] == pytest.approx(north(800)["lat"])
        async with socket(served.base_url, "/v1/ws/driver", driver.token) as driver_socket:
            for metres in (770, 740, 710, 680):  # at a believable speed (the meter's rule)
                await driver_socket.send({"type": "location", **north(metres)})
                await asyncio.sleep(0.5)
            await app.state.locations.flush()
            moved = await _first(
                events,
                lambda e: (
                    e[0] == "trip"
                    and e[1]["position"] is not None
                    and e[1]["position"]["lat"] == pytest.approx(north(680)["lat"])
                ),
                "the car's new position pushed",
            )
            assert moved[1]["eta_s"] < first[1]["eta_s"]
            cancelled = await http.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)
            assert cancelled.status_code == 200
            await asyncio.wait_for(reader, 10)  # the server ended the stream
        last = events[-1]
        assert last[0] == "trip" and last[1]["over"] is True and last[1]["position"] is None
        # A follower who reconnects gets the end once, and the stream ends again.
        again: list[tuple[str, dict[str, Any]]] = []
        await asyncio.wait_for(_events(http, made["token"], again), 10)
        assert [name for name, _ in again] == ["trip"] and again[0][1]["over"] is True
        clock.offset = timedelta(minutes=31)
        assert (await http.get(f"/v1/shared/{made['token']}/events")).status_code == 404


async def test_a_link_revoked_while_followed_ends_its_stream(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    from tests.builders import serve

    async with serve(settings) as served:
        http = served.http
        rider, _, trip = await _parties(served.app, http, admin_headers)
        made = await _share(http, rider, trip["id"])
        events: list[tuple[str, dict[str, Any]]] = []
        reader = asyncio.create_task(_events(http, made["token"], events))
        await _first(events, lambda e: e[0] == "trip", "the first trip event")
        path = f"/v1/trips/{trip['id']}/share/{made['token']}"
        assert (await http.delete(path, headers=rider.headers)).status_code == 204
        await asyncio.wait_for(reader, 10)
        assert events[-1] == ("gone", {"status": "gone"})


@pytest.fixture
async def guarded(settings: Settings) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
    app = create_app(
        settings.model_copy(update={"share_miss_limit": "3/hour", "share_limit": "8/minute"})
    )
    async with (
        LifespanManager(app, startup_timeout=30, shutdown_timeout=30),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http,
    ):
        yield app, http


async def test_guessing_links_is_limited_per_address(
    guarded: tuple[FastAPI, AsyncClient], admin_headers: dict[str, str]
) -> None:
    app, http = guarded
    rider, _, trip = await _parties(app, http, admin_headers)
    made = await _share(http, rider, trip["id"])
    assert (await http.get(f"/v1/shared/{made['token']}")).status_code == 200
    for _ in range(3):
        assert (await http.get(f"/v1/shared/{share.new_token()}")).status_code == 404
    # Past the misses allowed, every link is refused to this address, the real one too.
    for path in (f"/v1/shared/{made['token']}", f"/t/{made['token']}"):
        refused = await http.get(path)
        assert refused.status_code == 429, path
        assert int(refused.headers["retry-after"]) >= 1


async def test_opening_links_is_limited_per_address(
    guarded: tuple[FastAPI, AsyncClient], admin_headers: dict[str, str]
) -> None:
    app, http = guarded
    rider, _, trip = await _parties(app, http, admin_headers)
    made = await _share(http, rider, trip["id"])
    answers = [(await http.get(f"/v1/shared/{made['token']}")).status_code for _ in range(9)]
    assert answers == [200] * 8 + [429]


async def test_auto_share_makes_the_riders_link_when_the_policy_says_so(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    from zoneinfo import ZoneInfo

    _, _, trip = await _parties(app, client, admin_headers)
    zone = ZoneInfo("America/Toronto")
    trip_id = uuid.UUID(trip["id"])
    noon = datetime(2026, 12, 7, 12, 0, tzinfo=zone)
    late = datetime(2026, 12, 7, 23, 30, tzinfo=zone)

    async def auto(policy: share.AutoSharePolicy, now: datetime) -> share.NewShare | None:
        return await share.auto_share(
            session=session,
            trip_id=trip_id,
            policy=policy,
            now=now,
            night_starts="22:00",
            night_ends="06:00",
            zone=zone,
        )

    assert await auto("never", late) is None
    assert await auto("night", noon) is None
    made = await auto("night", late)
    assert made is not None and made.share.automatic
    assert (await client.get(f"/v1/shared/{made.token}")).status_code == 200
    assert await auto("always", noon) is None  # one automatic link per trip
    assert share.at_night(
        datetime(2026, 12, 7, 5, 59, tzinfo=zone), starts="22:00", ends="06:00", zone=zone
    )
    assert not share.at_night(
        datetime(2026, 12, 7, 6, 0, tzinfo=zone), starts="22:00", ends="06:00", zone=zone
    )
    assert share.at_night(
        datetime(2026, 12, 7, 14, 0, tzinfo=zone), starts="13:00", ends="15:00", zone=zone
    )


def test_no_link_reaches_a_log_line() -> None:
    token = share.new_token()
    for line in (
        f'"GET /t/{token} HTTP/1.1" 200',
        f'"GET /v1/shared/{token}/events HTTP/1.1" 200',
        f'"DELETE /v1/trips/{uuid.uuid4()}/share/{token} HTTP/1.1" 204',
    ):
        assert token not in redact(line)
        assert "[redacted]" in redact(line)


async def test_auto_share_at_assignment_hands_the_link_to_the_riders_app(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    from zoneinfo import ZoneInfo

    from dispatch.safety.share_opening import share_at_assignment
    from tests.builders import serve

    async with serve(settings) as served:
        http, app = served.http, served.app
        rider, driver, trip = await _parties(app, http, admin_headers)

        async def at_assignment(policy: share.AutoSharePolicy) -> share.NewShare | None:
            async with app.state.sessionmaker() as session:
                return await share_at_assignment(
                    session=session,
                    redis=app.state.redis,
                    trip_id=uuid.UUID(trip["id"]),
                    account_id=rider.id,
                    policy=policy,
                    night_starts="22:00",
                    night_ends="06:00",
                    zone=ZoneInfo("America/Toronto"),
                    base_url=served.base_url,
                    now=utcnow(),
                )

        async with (
            socket(served.base_url, "/v1/ws/rider", rider.token) as rider_socket,
            socket(served.base_url, "/v1/ws/driver", driver.token) as driver_socket,
        ):
            assert await at_assignment("never") is None
            await rider_socket.nothing("trip_shared", within_s=0.3)
            made = await at_assignment("always")
            assert made is not None
            frame = await rider_socket.next("trip_shared")
            assert frame["token"] == made.token and frame["automatic"] is True
            assert frame["url"] == f"{served.base_url}/t/{made.token}"
            assert frame["share_id"] == str(made.share.id) and frame["expires_at"] is None
            assert (await http.get(f"/v1/shared/{made.token}")).status_code == 200
            assert await at_assignment("always") is None  # one automatic link per trip
            await rider_socket.nothing("trip_shared", within_s=0.3)
            await driver_socket.nothing("trip_shared", within_s=0.1)  # the rider's alone


async def test_any_worker_serves_a_link_whichever_holds_the_sockets(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    """Two workers behind one balancer: the driver's and the rider's sockets on the first, the
    follower on the second. Positions and the first opening cross over PostgreSQL and Redis."""
    from tests.builders import serve

    async with serve(settings) as first, serve(settings) as second:
        rider, driver, trip = await _parties(first.app, first.http, admin_headers)
        made = await _share(first.http, rider, trip["id"])
        events: list[tuple[str, dict[str, Any]]] = []
        async with (
            socket(first.base_url, "/v1/ws/rider", rider.token) as rider_socket,
            socket(first.base_url, "/v1/ws/driver", driver.token) as driver_socket,
        ):
            reader = asyncio.create_task(_events(second.http, made["token"], events))
            opened = await rider_socket.next("share_opened")
            assert opened["share_id"] == made["id"]
            await _first(events, lambda e: e[0] == "trip", "the first trip event")
            for metres in (770, 740, 710):
                await driver_socket.send({"type": "location", **north(metres)})
                await asyncio.sleep(0.5)
            await first.app.state.locations.flush()
            await _first(
                events,
                lambda e: (
                    e[0] == "trip"
                    and e[1]["position"] is not None
                    and e[1]["position"]["lat"] == pytest.approx(north(710)["lat"])
                ),
                "the position taken in by the first worker, pushed by the second",
            )
            cancelled = await first.http.post(
                f"/v1/trips/{trip['id']}/cancel", headers=rider.headers
            )
            assert cancelled.status_code == 200
            await asyncio.wait_for(reader, 10)
        assert events[-1][1]["over"] is True


async def test_a_link_made_before_a_driver_accepts_shows_who_is_coming_once_one_does(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    from tests.builders import offer_to, place_driver, request_trip, serve

    async with serve(settings) as served:
        http, app = served.http, served.app
        rider = await make_rider(http, "Rosa Quintal")
        driver = await make_driver(http, admin_headers, name="Dana Bélanger")
        trip = await request_trip(http, rider)
        made = await _share(http, rider, trip["id"])
        waiting = (await http.get(f"/v1/shared/{made['token']}")).json()
        assert waiting["status"] == "requested"
        assert waiting["driver"] is None and waiting["vehicle"] is None
        assert waiting["position"] is None and waiting["target"] is None
        events: list[tuple[str, dict[str, Any]]] = []
        reader = asyncio.create_task(_events(http, made["token"], events))
        await _first(events, lambda e: e[0] == "trip", "the first trip event")
        await place_driver(app, driver.id, north(600))
        offer_id = await offer_to(app, driver)
        accepted = await http.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
        assert accepted.status_code == 200
        coming = await _first(
            events, lambda e: e[1].get("status") == "assigned", "the assignment pushed"
        )
        assert coming[1]["driver"]["first_name"] == "Dana"
        assert coming[1]["heading_to"] == "pickup" and coming[1]["eta_s"] is not None
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def test_a_rider_who_shares_every_trip_gets_the_link_when_a_driver_accepts(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    """The rider's own choice (`PATCH /v1/riders/me`, `safety.auto_share`), end to end: the
    driver's accept over HTTP hands the rider's app its link over the socket."""
    from tests.builders import assigned_trip, serve

    async with serve(settings) as served:
        http, app = served.http, served.app
        rider = await make_rider(http, "Rosa Quintal")
        chose = await http.patch(
            "/v1/riders/me", json={"safety": {"auto_share": "always"}}, headers=rider.headers
        )
        assert chose.status_code == 200, chose.text
        driver = await make_driver(http, admin_headers, name="Dana Bélanger")
        other_rider = await make_rider(http, "Léa Tremblay")  # never shares
        other_driver = await make_driver(http, admin_headers, name="Yves Roy")
        async with socket(served.base_url, "/v1/ws/rider", rider.token) as rider_socket:
            trip = await assigned_trip(app, http, rider, driver, at=north(800))
            frame = await rider_socket.next("trip_shared")
            assert frame["trip_id"] == trip["id"] and frame["automatic"] is True
            assert frame["url"].endswith(f"/t/{frame['token']}")
            assert (await http.get(f"/v1/shared/{frame['token']}")).status_code == 200
        async with socket(served.base_url, "/v1/ws/rider", other_rider.token) as quiet:
            await assigned_trip(app, http, other_rider, other_driver, at=north(800))
            await quiet.nothing("trip_shared", within_s=0.5)


async def test_the_link_shows_the_drivers_approved_photo_while_it_lives(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    import io

    from PIL import Image

    rider, driver, trip = await _parties(app, client, admin_headers)
    made = await _share(client, rider, trip["id"])
    seen = (await client.get(f"/v1/shared/{made['token']}")).json()
    assert seen["driver"]["photo_url"] is None  # none approved yet

    out = io.BytesIO()
    Image.new("RGB", (400, 400), (30, 90, 160)).save(out, format="JPEG")
    uploaded = await client.put(
        "/v1/drivers/me/photo",
        content=out.getvalue(),
        headers={**driver.headers, "Content-Type": "image/jpeg"},
    )
    assert uploaded.status_code in (200, 201), uploaded.text
    seen = (await client.get(f"/v1/shared/{made['token']}")).json()
    assert seen["driver"]["photo_url"] is None  # pending: a person has not looked yet
    approved = await client.post(
        f"/v1/drivers/{driver.id}/photo/approve", json={}, headers=admin_headers
    )
    assert approved.status_code == 200, approved.text

    seen = (await client.get(f"/v1/shared/{made['token']}")).json()
    photo_url = seen["driver"]["photo_url"]
    assert photo_url is not None and photo_url.startswith(f"/v1/shared/{made['id']}/photo")
    photo = await client.get(photo_url)  # no account: the link's viewer
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.content[:2] == b"\xff\xd8"

    # Revoked: the photo closes with the link, and a made-up link opens nothing.
    revoked = await client.delete(
        f"/v1/trips/{trip['id']}/share/{made['token']}", headers=rider.headers
    )
    assert revoked.status_code == 204
    assert (await client.get(photo_url)).status_code == 404
    assert (await client.get(f"/v1/shared/{uuid.uuid4()}/photo")).status_code == 404
