"""The rules about trips other domains read (dispatch/trips/rules.py): the SQL and the Python
spelling of "a trip that pays its driver" agree on every kind of ending, and "ridden" is
narrower on purpose."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.trips.models import Trip
from dispatch.trips.rules import paid_its_driver, pays_its_driver, was_ridden
from tests.builders import DOWNTOWN, assigned_trip, make_driver, make_rider, request_trip
from tests.pay.helpers import completed_trip, fee_paid_trip


async def test_both_spellings_of_a_trip_that_pays_its_driver_agree(
    app: FastAPI, client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    completed = await completed_trip(app, client, session, rider, driver)
    with_fee = await fee_paid_trip(app, client, session, rider, driver)
    free = await assigned_trip(app, client, rider, driver, at=DOWNTOWN)
    cancelled = await client.post(f"/v1/trips/{free['id']}/cancel", headers=rider.headers)
    assert cancelled.json()["cancellation_fee"] == "0.00"
    waiting = await request_trip(client, rider)

    paying = {str(row) for row in await session.scalars(select(Trip.id).where(pays_its_driver()))}
    ridden = {str(row) for row in await session.scalars(select(Trip.id).where(was_ridden()))}
    rows = list(await session.scalars(select(Trip).execution_options(populate_existing=True)))
    assert {str(row.id) for row in rows if paid_its_driver(row)} == paying
    assert paying == {completed["id"], with_fee["id"]}
    assert ridden == {completed["id"]}
    assert {free["id"], waiting["id"]}.isdisjoint(paying)
