"""The earnings credit against the real PostGIS: a driver's shift (its online time, added up by
the statements that renew presence, and its earnings, read from the trips), the median of the
drivers online, the founding agreement's choice between drivers, and the offer's `why`."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.terms import load_founding_terms
from coop.db import utcnow
from dispatch.locations import service as locations_service
from dispatch.locations.shifts import SHIFT_BREAK_S
from dispatch.matching import costs
from tests.builders import DOWNTOWN, make_driver, make_rider, place_driver, request_trip
from tests.dispatch.helpers import on_shift


def north(metres: float, east_m: float = 0.0) -> dict[str, float]:
    return {
        "lat": DOWNTOWN["lat"] + metres / 111_195,
        "lon": DOWNTOWN["lon"] + east_m / 78_000,
    }


async def _shift(session: AsyncSession, driver_id: uuid.UUID) -> tuple[datetime, float]:
    row = (
        await session.execute(
            text(
                "SELECT shift_started_at, shift_online_s FROM location_driver_position"
                " WHERE driver_id = :id"
            ),
            {"id": driver_id},
        )
    ).one()
    await session.commit()
    return row[0], float(row[1])


async def _availability(app: FastAPI, driver_id: uuid.UUID, available: bool, at: datetime) -> None:
    async with app.state.sessionmaker() as session:
        await locations_service.set_availability(
            session=session,
            driver_id=driver_id,
            available=available,
            now=at,
            grace_s=app.state.settings.driver_grace_s,
        )
        await session.commit()


async def _ping(app: FastAPI, driver_id: uuid.UUID, at: datetime) -> None:
    app.state.locations.touch(driver_id, at)
    await app.state.locations.flush()


async def test_online_time_adds_up_while_present_and_a_long_break_starts_a_new_shift(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    driver = await make_driver(client, admin_headers)
    grace = app.state.settings.driver_grace_s
    assert grace < 40
    t0 = utcnow() - timedelta(hours=8)
    await _availability(app, driver.id, True, t0)
    assert await _shift(session, driver.id) == (t0, 0.0)
    await _ping(app, driver.id, t0 + timedelta(seconds=10))
    await _ping(app, driver.id, t0 + timedelta(seconds=20))
    # Out of touch for longer than the grace period: that gap is not online time.
    await _ping(app, driver.id, t0 + timedelta(seconds=60))
    # An old sign of life arriving late counts nothing.
    await _ping(app, driver.id, t0 + timedelta(seconds=30))
    await _availability(app, driver.id, False, t0 + timedelta(seconds=70))
    assert await _shift(session, driver.id) == (t0, 30.0)
    # Signs of life while off duty are not online time either.
    await _ping(app, driver.id, t0 + timedelta(seconds=80))
    # A short break continues the shift.
    back = t0 + timedelta(minutes=30)
    await _availability(app, driver.id, True, back)
    await _ping(app, driver.id, back + timedelta(seconds=10))
    assert await _shift(session, driver.id) == (t0, 40.0)
    # Going available again while available changes nothing but counts the time since.
    await _availability(app, driver.id, True, back + timedelta(seconds=15))
    assert await _shift(session, driver.id) == (t0, 45.0)
    # A break of SHIFT_BREAK_S or more (here out of touch) ends it: the next sign starts anew.
    later = back + timedelta(seconds=15 + SHIFT_BREAK_S + 1)
    await _ping(app, driver.id, later)
    assert await _shift(session, driver.id) == (later, 0.0)
    await _ping(app, driver.id, later + timedelta(seconds=5))
    assert await _shift(session, driver.id) == (later, 5.0)


async def test_two_workers_renewing_the_same_driver_at_once_count_the_time_once(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    driver = await make_driver(client, admin_headers)
    t0 = utcnow() - timedelta(hours=1)
    await _availability(app, driver.id, True, t0)
    at = t0 + timedelta(seconds=12)
    # Two transactions (as two workers would) say the same thing at the same moment.
    await asyncio.gather(*(_availability(app, driver.id, True, at) for _ in range(4)))
    assert await _shift(session, driver.id) == (t0, 12.0)


async def test_founding_terms_a_fresh_near_driver_wins_then_loses_to_a_poorer_one(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    terms = load_founding_terms().dispatch
    assert terms.earnings_credit_max_s and terms.fairness_credit_max_s
    await make_rider(client, "Someone who rode earlier")
    fresh = await make_driver(client, admin_headers, name="Just came on, 300 m")
    idle = await make_driver(client, admin_headers, name="Waited 59 min, nothing earned, 3 km")
    busy = [await make_driver(client, admin_headers, name=f"Busy {i}") for i in range(2)]
    await place_driver(app, fresh.id, north(300))
    await place_driver(app, idle.id, north(3000))
    for i, other in enumerate(busy):
        await place_driver(app, other.id, north(30_000 + 1000 * i))  # beyond the radius
        await on_shift(session, other, online_h=3, earned=[Decimal("40.00")] * 3)
    await on_shift(session, idle, online_h=3, earned=[], waited_min=59)
    rider = await make_rider(client, "First")
    trip = await request_trip(client, rider)
    [offer] = (await app.state.matcher.run_batch()).offers
    assert offer.driver_id == fresh.id
    assert "fairness" not in offer.why  # the nearest driver: nothing to explain
    cancelled = await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)
    assert cancelled.status_code == 200

    # An equally near driver (20 m farther) whose shift has paid less per online hour wins.
    poor = await make_driver(client, admin_headers, name="Earned 20.00 in 3 h, 320 m")
    await place_driver(app, poor.id, north(320))
    await on_shift(session, poor, online_h=3, earned=[Decimal("12.00"), Decimal("8.00")])
    await place_driver(app, fresh.id, north(300))  # fresh again, and nearer
    await request_trip(client, await make_rider(client, "Second"))
    [offer] = (await app.state.matcher.run_batch()).offers
    assert offer.driver_id == poor.id
    # The credit is the formula's, on the median of the drivers online for 30 min or more:
    # 40.00, 40.00 (the busy ones), 0.00 (idle), 6.67 (poor) an hour.
    reference = float(np.median([40.0, 40.0, 0.0, 20 / 3]))
    [shortfall] = costs.earnings_shortfall_array(
        np.array([20.0]), np.array([3 * 3600.0]), reference
    )
    assert shortfall > 0.4
    expected = costs.edge_cost(
        pickup_eta_s=offer.pickup_eta_s,
        idle_s=offer.idle_s,
        fairness_weight=terms.fairness_weight,
        fairness_credit_max_s=terms.fairness_credit_max_s,
        earnings_shortfall=float(shortfall),
        earnings_credit_max_s=terms.earnings_credit_max_s,
    )
    # Less the rider's credit for the second or so the request waited, and the idle seconds'
    # rounding in the offer.
    assert expected - 3 <= offer.cost <= expected + 1
    # The why names the fairness part with both drivers' real figures.
    assert "this shift you earned 20.00 in 3 h online, below the median of 23.33 an hour" in (
        offer.why
    )
    assert "fairness gave you this trip over a driver nearer: they had earned 0.00 in " in (
        offer.why
    )
    assert " online this shift, you 20.00 in 3 h" in offer.why
