"""Trips driven to their end over the real protocol, for the pay tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from coop.db import utcnow
from tests.builders import DOWNTOWN, Account, assigned_trip, place_driver


async def shift(session: AsyncSession, trip_id: str, column: str, seconds: float) -> None:
    """Moves one of the trip's timestamps `seconds` into the past (time passes, no waiting)."""
    await session.execute(
        text(f"UPDATE trip SET {column} = {column} - CAST(:delta AS interval) WHERE id = :id"),
        {"delta": timedelta(seconds=seconds), "id": uuid.UUID(trip_id)},
    )
    await session.commit()


@contextmanager
def on_the_system_clock(app: FastAPI) -> Iterator[None]:
    """The trip's moves stamped by the system's time, whatever the test set the app's clock to.
    The builders' positions and the matcher's offers are stamped by the system's time, so a trip
    driven after a test moved the app's clock days ahead could not be accepted nor arrive; such
    a trip stands for a record that reaches pay late, after the periods the clock passed."""
    clock = app.state.clock
    app.state.clock = utcnow
    try:
        yield
    finally:
        app.state.clock = clock


async def completed_trip(
    app: FastAPI,
    client: AsyncClient,
    session: AsyncSession,
    rider: Account,
    driver: Account,
    *,
    engaged_s: float = 600,
) -> dict[str, Any]:
    """A trip `driver` accepted `engaged_s` seconds before completing it (`_completed_trip`),
    driven on the system's clock."""
    with on_the_system_clock(app):
        return await _completed_trip(app, client, session, rider, driver, engaged_s=engaged_s)


async def _completed_trip(
    app: FastAPI,
    client: AsyncClient,
    session: AsyncSession,
    rider: Account,
    driver: Account,
    *,
    engaged_s: float = 600,
) -> dict[str, Any]:
    """A trip `driver` accepted `engaged_s` seconds before completing it (no positions: the
    agreement's minimum fare, 7.00: 6.44 to the driver, 0.56 to the co-op). The time is a long
    pickup, and the offer said it would be, so all of it counts as engaged (pay.engaged)."""
    trip = await assigned_trip(app, client, rider, driver)
    await shift(session, trip["id"], "assigned_at", engaged_s)
    await session.execute(
        text(
            "UPDATE trip_offer SET pickup_eta_s = :eta WHERE trip_id = :id AND status = 'accepted'"
        ),
        {"eta": round(engaged_s), "id": uuid.UUID(trip["id"])},
    )
    await session.commit()
    for step in ("arrived", "start", "complete"):
        response = await client.post(f"/v1/trips/{trip['id']}/{step}", headers=driver.headers)
        assert response.status_code == 200, response.text
    done: dict[str, Any] = response.json()
    assert done["status"] == "completed"
    # Off duty, so the next batch offers the next trip to the driver a test names.
    await place_driver(app, driver.id, DOWNTOWN, available=False)
    return done


async def fee_paid_trip(
    app: FastAPI, client: AsyncClient, session: AsyncSession, rider: Account, driver: Account
) -> dict[str, Any]:
    """A trip its rider cancelled after the free period: the 5.00 fee goes to the driver."""
    trip = await assigned_trip(app, client, rider, driver)
    await shift(session, trip["id"], "assigned_at", 300)
    response = await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)
    assert response.status_code == 200, response.text
    cancelled: dict[str, Any] = response.json()
    await place_driver(app, driver.id, DOWNTOWN, available=False)
    assert cancelled["cancellation_fee"] == "5.00"
    return cancelled


def problem(response: Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == type_, body
    return body
