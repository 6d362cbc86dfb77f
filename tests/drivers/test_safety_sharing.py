"""A driver's own trip sharing (drivers/safety.py) through `GET/PATCH /v1/drivers/me/safety`:
the auto-share policy and up to five trusted contacts, validated by the riders' very rules, and
the link the policy makes when a rider's trip is assigned to the driver, at night, always or
never, by the service's clock."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coop.db import utcnow
from coop.settings import Settings
from coop.trusted_contacts import MAX_CONTACTS, TrustedContact
from dispatch.safety.share_models import Sharer, TripShare
from drivers.safety import NO_SHARING, load_sharing
from tests.builders import (
    Account,
    assigned_trip,
    make_driver,
    make_rider,
    north,
    offer_to,
    request_trip,
    serve,
    socket,
)

PATH = "/v1/drivers/me/safety"
MONTREAL = ZoneInfo("America/Montreal")


async def _patch(client: AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return await client.patch(PATH, json=body, headers=headers)


async def test_a_new_driver_shares_nothing(
    client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    answer = await client.get(PATH, headers=driver.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"auto_share": "never", "contacts": []}
    assert await load_sharing(session, driver.id) == NO_SHARING


async def test_a_driver_sets_their_contacts_and_policy_normalised_as_a_riders(
    client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    answer = await _patch(
        client,
        driver.headers,
        {
            "auto_share": "night",
            "contacts": [
                {"name": "Lucie", "phone": "+1 (514) 555-0199"},
                {"name": "Marc", "email": " Marc@Example.ORG "},
            ],
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "auto_share": "night",
        "contacts": [
            {"name": "Lucie", "phone": "+15145550199", "email": None},
            {"name": "Marc", "phone": None, "email": "marc@example.org"},
        ],
    }
    assert (await client.get(PATH, headers=driver.headers)).json() == answer.json()
    stored = await load_sharing(session, driver.id)
    assert stored.auto_share == "night"
    assert stored.contacts[0] == TrustedContact(name="Lucie", phone="+15145550199")

    # Only the fields given change; `null` resets the policy to never.
    answer = await _patch(client, driver.headers, {"contacts": []})
    assert answer.json() == {"auto_share": "night", "contacts": []}
    answer = await _patch(client, driver.headers, {"auto_share": None})
    assert answer.json() == {"auto_share": "never", "contacts": []}
    # The driver's export carries them (the data register's `driver_safety_preferences`).
    await _patch(client, driver.headers, {"contacts": [{"name": "Ana", "email": "a@b.org"}]})
    export = (await client.get("/v1/drivers/me/export", headers=driver.headers)).json()
    assert export["safety"] == {
        "auto_share": "never",
        "contacts": [{"name": "Ana", "phone": None, "email": "a@b.org"}],
    }


async def test_two_first_changes_at_once_both_land(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    """A driver's app and a second phone change their sharing at the same moment, before any
    row exists: neither is lost nor refused."""
    drivers = [await make_driver(client, admin_headers) for _ in range(4)]
    contacts = [{"name": "Lucie", "phone": "5145550199"}]
    answers = await asyncio.gather(
        *(
            _patch(client, driver.headers, body)
            for driver in drivers
            for body in ({"auto_share": "night"}, {"contacts": contacts})
        )
    )
    assert [answer.status_code for answer in answers] == [200] * len(answers), [
        answer.text for answer in answers
    ]
    for driver in drivers:
        assert (await client.get(PATH, headers=driver.headers)).json() == {
            "auto_share": "night",
            "contacts": [{**contacts[0], "email": None}],
        }


@pytest.mark.parametrize(
    "body",
    [
        {"auto_share": "weekends"},
        {"auto_share": True},
        {"pin": "always"},  # the PIN is the rider's choice, not the driver's
        {"contacts": [{"name": "Lucie"}]},
        {"contacts": [{"name": "Lucie", "phone": "call me"}]},
        {"contacts": [{"name": "Lucie", "phone": "12345"}]},
        {"contacts": [{"name": "Lucie", "email": "lucie"}]},
        {"contacts": [{"name": "Lucie", "email": "Lucie <lucie@example.org>"}]},
        {"contacts": [{"name": "", "phone": "5145550199"}]},
        {"contacts": [{"name": "Lucie", "phone": "5145550199", "address": "1 rue X"}]},
        {"contacts": [{"name": f"C{i}", "phone": "5145550199"} for i in range(MAX_CONTACTS + 1)]},
        {"contacts": "Lucie"},
    ],
)
async def test_bad_sharing_is_refused_and_nothing_is_half_written(
    client: AsyncClient, admin_headers: dict[str, str], body: dict[str, Any]
) -> None:
    driver = await make_driver(client, admin_headers)
    before = await _patch(
        client,
        driver.headers,
        {"auto_share": "night", "contacts": [{"name": "Lucie", "phone": "5145550199"}]},
    )
    assert before.status_code == 200, before.text
    answer = await _patch(client, driver.headers, {"auto_share": "always", **body})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "validation_error"
    assert (await client.get(PATH, headers=driver.headers)).json() == before.json()


async def test_a_rider_cannot_read_or_set_a_drivers_sharing_nor_a_driver_a_riders(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    body = {"auto_share": "always", "contacts": [{"name": "Eve", "phone": "5145550000"}]}
    for answer in (
        await client.get(PATH, headers=rider.headers),
        await _patch(client, rider.headers, body),
        await client.patch("/v1/riders/me", json={"safety": body}, headers=driver.headers),
    ):
        assert answer.status_code == 403, answer.text
        assert answer.json()["type"] == "forbidden"
    assert (await _patch(client, {}, body)).status_code == 401
    # Neither changed: the driver's is untouched, and so is the rider's.
    assert (await client.get(PATH, headers=driver.headers)).json()["contacts"] == []
    me = (await client.get("/v1/riders/me", headers=rider.headers)).json()
    assert me["safety"] == {"pin": None, "auto_share": "never", "contacts": []}


def _in_montreal_next(hour: int, minute: int) -> timedelta:
    """How far the clock must move from now for Montréal's wall clock to read hour:minute."""
    now = utcnow()
    local = now.astimezone(MONTREAL)
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= local:
        target += timedelta(days=1)
    return target - now


class ShiftedClock:
    """The service's clock moved to a chosen local time (app.state.clock), still running."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def __call__(self) -> datetime:
        return utcnow() + self.offset


async def _assigned_at_the_services_time(
    app: FastAPI, http: AsyncClient, rider: Account, driver: Account
) -> dict[str, Any]:
    """`assigned_trip`, the driver placed on the map at the service's clock's time (a clock
    moved hours ahead would otherwise find their position stale)."""
    from dispatch.locations import service as locations_service

    trip = await request_trip(http, rider)
    now = app.state.clock()
    async with app.state.sessionmaker() as session:
        await locations_service.set_availability(
            session=session,
            driver_id=driver.id,
            available=True,
            now=now,
            grace_s=app.state.settings.driver_grace_s,
        )
        await session.commit()
    at = north(800)
    app.state.locations.report(
        driver.id, lat=at["lat"], lon=at["lon"], heading_deg=None, speed_mps=None, received_at=now
    )
    await app.state.locations.flush()
    offer_id = await offer_to(app, driver)
    accepted = await http.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["id"] == trip["id"]
    answer: dict[str, Any] = accepted.json()
    return answer


async def _driver_links(app: FastAPI, trip_id: str) -> list[TripShare]:
    async with app.state.sessionmaker() as session:
        return list(
            await session.scalars(
                select(TripShare).where(
                    TripShare.trip_id == trip_id, TripShare.sharer == Sharer.driver
                )
            )
        )


@pytest.mark.parametrize(
    ("policy", "local", "shared"),
    [
        ("always", (12, 0), True),
        ("night", (23, 30), True),
        ("night", (12, 0), False),
        ("never", (23, 30), False),
    ],
)
async def test_a_drivers_policy_shares_their_trip_at_assignment_by_the_services_clock(
    settings: Settings,
    admin_headers: dict[str, str],
    policy: str,
    local: tuple[int, int],
    shared: bool,
) -> None:
    """The founding agreement's night is 22:00 to 06:00 in Montréal: the driver's link is made
    when the driver accepts and sent to the driver's socket alone; the rider (who shares
    nothing) gets no frame."""
    async with serve(settings) as served:
        http, app = served.http, served.app
        app.state.clock = ShiftedClock(_in_montreal_next(*local))
        rider = await make_rider(http, "Rosa Quintal")
        driver = await make_driver(http, admin_headers, name="Dana Bélanger")
        chose = await _patch(
            http,
            driver.headers,
            {"auto_share": policy, "contacts": [{"name": "Lucie", "phone": "5145550199"}]},
        )
        assert chose.status_code == 200, chose.text
        async with (
            socket(served.base_url, "/v1/ws/driver", driver.token) as driver_socket,
            socket(served.base_url, "/v1/ws/rider", rider.token) as rider_socket,
        ):
            trip = await _assigned_at_the_services_time(app, http, rider, driver)
            if shared:
                frame = await driver_socket.next("trip_shared")
                assert frame["trip_id"] == trip["id"] and frame["automatic"] is True
                assert frame["url"] == f"{served.base_url}/t/{frame['token']}"
                seen = await http.get(f"/v1/shared/{frame['token']}")
                assert seen.status_code == 200 and seen.json()["status"] == "assigned"
                links = await _driver_links(app, trip["id"])
                assert [(link.automatic, str(link.id)) for link in links] == [
                    (True, frame["share_id"])
                ]
                # The rider cannot revoke the link the driver keeps for their own safety.
                revoked = await http.delete(
                    f"/v1/trips/{trip['id']}/share/{frame['token']}", headers=rider.headers
                )
                assert revoked.status_code == 404, revoked.text
            else:
                await driver_socket.nothing("trip_shared", within_s=0.5)
                assert await _driver_links(app, trip["id"]) == []
            await rider_socket.nothing("trip_shared", within_s=0.2)


async def test_both_parties_who_share_each_get_their_own_link(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    async with serve(settings) as served:
        http, app = served.http, served.app
        rider = await make_rider(http, "Rosa Quintal")
        driver = await make_driver(http, admin_headers, name="Dana Bélanger")
        assert (await _patch(http, driver.headers, {"auto_share": "always"})).status_code == 200
        chose = await http.patch(
            "/v1/riders/me", json={"safety": {"auto_share": "always"}}, headers=rider.headers
        )
        assert chose.status_code == 200, chose.text
        async with (
            socket(served.base_url, "/v1/ws/driver", driver.token) as driver_socket,
            socket(served.base_url, "/v1/ws/rider", rider.token) as rider_socket,
        ):
            trip = await assigned_trip(app, http, rider, driver, at=north(800))
            drivers = await driver_socket.next("trip_shared")
            riders = await rider_socket.next("trip_shared")
        assert drivers["trip_id"] == riders["trip_id"] == trip["id"]
        assert drivers["token"] != riders["token"]
        assert drivers["share_id"] != riders["share_id"]
