"""The authorization's cap on cars in service (docs/jurisdiction.md): beyond it a driver going
available waits in line, told their place over the socket (kept open), and is admitted first-come
when a car leaves, by going off duty or falling silent; two drivers never take the last place."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta

import pytest_asyncio
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.db import utcnow
from coop.settings import Settings
from dispatch.locations.models import DriverPosition
from dispatch.matching import capacity
from server.app import create_app
from tests.builders import DOWNTOWN, live_server, make_driver, socket


@pytest_asyncio.fixture
async def capped(settings: Settings) -> AsyncIterator[tuple[FastAPI, str]]:
    """The service with an authorization for two cars at once."""
    app = create_app(settings.model_copy(update={"max_cars_in_service": 2}))
    async with live_server(app) as base_url:
        yield app, base_url


async def test_beyond_the_cap_a_driver_waits_in_line_and_is_admitted_when_a_car_leaves(
    capped: tuple[FastAPI, str], admin_headers: dict[str, str]
) -> None:
    app, base_url = capped
    async with AsyncClient(base_url=base_url) as http, AsyncExitStack() as stack:
        drivers = [await make_driver(http, admin_headers, name=f"D{n}") for n in range(4)]
        sockets = [
            await stack.enter_async_context(socket(base_url, "/v1/ws/driver", d.token))
            for d in drivers
        ]
        for ws in sockets:
            await ws.send({"type": "location", **DOWNTOWN})
        for ws in sockets[:2]:
            await ws.send({"type": "availability", "available": True})
            await ws.next("availability", available=True)
        for place, ws in enumerate(sockets[2:], start=1):
            await ws.send({"type": "availability", "available": True})
            refused = await ws.next("error", code="service_capacity_reached")
            assert refused["place"] == place and "2 cars" in refused["message"]
        # The socket stays open; asking again keeps the place.
        await sockets[3].send({"type": "availability", "available": True})
        assert (await sockets[3].next("error", code="service_capacity_reached"))["place"] == 2

        # A car leaves: the first in line is admitted, told over their socket.
        await sockets[0].send({"type": "availability", "available": False})
        await sockets[0].next("availability", available=False)
        await sockets[2].next("availability", available=True)
        await sockets[3].send({"type": "availability", "available": True})
        assert (await sockets[3].next("error", code="service_capacity_reached"))["place"] == 1

        # A car falls silent past the grace period: the matcher's next batch admits the next.
        grace = app.state.settings.driver_grace_s
        async with app.state.sessionmaker() as session:
            await session.execute(
                update(DriverPosition)
                .where(DriverPosition.driver_id == drivers[1].id)
                .values(last_seen_at=utcnow() - timedelta(seconds=grace + 5))
            )
            await session.commit()
        await app.state.matcher.run_batch()
        await sockets[3].next("availability", available=True)


async def test_two_drivers_never_take_the_last_place(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    drivers = [await make_driver(client, admin_headers, name=f"R{n}") for n in range(2)]
    now = utcnow()

    async def go(driver_id: uuid.UUID) -> capacity.Admission:
        async with sessionmaker() as session:
            admission = await capacity.go_available(
                session=session, driver_id=driver_id, cap=1, now=now, grace_s=25
            )
            await asyncio.sleep(0.05)  # hold the place's lock a moment
            await session.commit()
            return admission

    outcomes = await asyncio.gather(*(go(driver.id) for driver in drivers))
    assert sorted(outcome.admitted for outcome in outcomes) == [False, True]
    assert [o.place for o in outcomes if not o.admitted] == [1]
    async with sessionmaker() as session:
        present_after = now - timedelta(seconds=25)
        assert await capacity.in_service(session=session, present_after=present_after) == 1
        assert await capacity.waiting(session=session) == 1


async def test_without_a_cap_every_driver_goes_available(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    assert capacity.cap_of(app.state.settings) is None  # Québec's law sets no cap itself
    for n in range(3):
        driver = await make_driver(client, admin_headers, name=f"F{n}")
        admission = await capacity.go_available(
            session=session, driver_id=driver.id, cap=None, now=utcnow(), grace_s=25
        )
        assert admission.admitted
    await session.commit()


async def test_the_operators_map_says_how_many_wait_for_a_place(
    capped: tuple[FastAPI, str], admin_headers: dict[str, str]
) -> None:
    app, base_url = capped
    async with AsyncClient(base_url=base_url) as http:
        signin = await http.get("/signin")
        csrf = signin.text.split('name="csrf" value="')[1].split('"')[0]
        await http.post("/signin", data={"token": admin_headers["Authorization"][7:], "csrf": csrf})
        page = await http.get("/ops")
        assert page.status_code == 200
        assert "0 drivers wait for a place under the cap of 2 cars in service" in page.text
