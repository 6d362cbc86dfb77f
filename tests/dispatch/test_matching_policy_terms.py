"""The matcher under whatever dispatch policy the agreement in force states: the bound (or none),
the fare-aware, signed earnings credit, and the candidates per request, against the real PostGIS.

The choice the bound was made for (a fresh driver 300 m away against a driver 3 km away who has
waited an hour and earned nothing) is checked against the formula of the terms in force: under
the founding bound the near driver wins, under no bound the far one does, as the members who vote
it away would expect."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.terms import DispatchTerms, load_founding_terms
from coop.db import utcnow
from dispatch.matching import candidates, costs
from tests.builders import Account, make_driver, make_rider, north, place_driver, request_trip
from tests.dispatch.helpers import dispatch_terms, on_shift

FOUNDING = load_founding_terms().dispatch
UNBOUNDED_FARE_AWARE: dict[str, Any] = {
    "fairness_weight": Decimal("0.4"),
    "earnings_credit_max_s": 5500,
    "earnings_credit_fare_scale_max": Decimal("2"),
    "earnings_penalty_above_median": True,
    "candidates_per_request": 0,
    "fairness_credit_max_s": None,
}

# (the changes to the founding dispatch terms, who the formula says must win)
POLICIES: dict[str, tuple[dict[str, Any], str]] = {
    "founding bound 400 s": ({}, "fresh"),
    "bound 600 s": ({"fairness_credit_max_s": 600}, "idle"),
    "no bound": ({"fairness_credit_max_s": None}, "idle"),
    "unbounded fare-aware signed": (UNBOUNDED_FARE_AWARE, "idle"),
    "no fairness at all": (
        {"fairness_weight": Decimal("0"), "earnings_credit_max_s": None},
        "fresh",
    ),
}


async def _busy_drivers(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> list[Account]:
    """Two drivers beyond the radius, online 3 h at 40.00 an hour: the median the others are
    measured against."""
    busy = [await make_driver(client, admin_headers, name=f"Busy {i}") for i in range(2)]
    for i, other in enumerate(busy):
        await place_driver(app, other.id, north(30_000 + 1000 * i))
        await on_shift(session, other, online_h=3, earned=[Decimal("40.00")] * 3)
    return busy


def _cost(terms: DispatchTerms, distance_m: float, idle_s: float, shortfall: float) -> int:
    return costs.edge_cost(
        pickup_eta_s=costs.pickup_eta_s(distance_m),
        idle_s=idle_s,
        fairness_weight=terms.fairness_weight,
        fairness_credit_max_s=terms.fairness_credit_max_s,
        earnings_shortfall=shortfall,
        earnings_credit_max_s=terms.earnings_credit_max_s,
        earnings_signed=bool(terms.earnings_penalty_above_median),
        fare_scale_max=terms.earnings_credit_fare_scale_max,
    )


@pytest.mark.parametrize("policy", list(POLICIES))
async def test_the_bound_in_force_decides_between_a_fresh_near_and_a_long_idle_far_driver(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    search_side: str,
    policy: str,
) -> None:
    changes, winner = POLICIES[policy]
    await dispatch_terms(session, **changes)
    terms = FOUNDING.model_copy(update=changes)
    await make_rider(client, "Someone who rode earlier")
    await _busy_drivers(app, client, admin_headers, session)
    fresh = await make_driver(client, admin_headers, name="Just came on, 300 m")
    idle = await make_driver(client, admin_headers, name="Waited 59 min, nothing earned, 3 km")
    await place_driver(app, fresh.id, north(300))
    await place_driver(app, idle.id, north(3000))
    await on_shift(session, idle, online_h=3, earned=[], waited_min=59)
    await request_trip(client, await make_rider(client, "Rider"))
    [offer] = (await app.state.matcher.run_batch()).offers

    # The formula of the terms in force: the median of the drivers online 30 min or more is
    # 40.00 an hour (the busy two, and the idle one at 0.00); the fresh driver is at the median.
    reference = float(np.median([40.0, 40.0, 0.0]))
    [idle_shortfall] = costs.earnings_shortfall_array(
        np.array([0.0]),
        np.array([3 * 3600.0]),
        reference,
        signed=bool(terms.earnings_penalty_above_median),
    )
    fresh_cost = _cost(terms, 300, 0.0, 0.0)
    idle_cost = _cost(terms, 3000, 59 * 60, float(idle_shortfall))
    expected = idle if idle_cost < fresh_cost else fresh
    assert expected == {"fresh": fresh, "idle": idle}[winner]  # the scenario means something
    assert offer.driver_id == expected.id
    if winner == "idle":
        assert "fairness gave you this trip over a driver 2.7 km nearer" in offer.why
    else:
        assert "fairness" not in offer.why


async def test_the_penalty_above_the_median_sends_a_well_paid_near_driver_after_others(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    search_side: str,
) -> None:
    await make_rider(client, "Someone who rode earlier")
    await _busy_drivers(app, client, admin_headers, session)
    rich = await make_driver(client, admin_headers, name="80.00 an hour, 300 m")
    fresh = await make_driver(client, admin_headers, name="Just came on, 1.5 km")
    await place_driver(app, rich.id, north(300))
    await place_driver(app, fresh.id, north(1500))
    await on_shift(session, rich, online_h=3, earned=[Decimal("80.00")] * 3)
    unsigned = {**UNBOUNDED_FARE_AWARE, "earnings_penalty_above_median": None}
    await dispatch_terms(session, **unsigned)
    rider = await make_rider(client, "First")
    trip = await request_trip(client, rider)
    [offer] = (await app.state.matcher.run_batch()).offers
    assert offer.driver_id == rich.id  # no credit below the median for either: the nearer
    cancelled = await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)
    assert cancelled.status_code == 200

    await dispatch_terms(session, **UNBOUNDED_FARE_AWARE)
    await place_driver(app, rich.id, north(300))
    await request_trip(client, await make_rider(client, "Second"))
    [offer] = (await app.state.matcher.run_batch()).offers
    assert offer.driver_id == fresh.id
    assert "fairness gave you this trip over a driver 1.2 km nearer" in offer.why


async def test_one_candidate_per_request_leaves_the_far_driver_out(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    # From the requests' side (fewer requests than drivers, as in a normal city): each request
    # weighs only its K nearest drivers.
    app.state.matcher.search_side = "requests"
    await dispatch_terms(session, **{**UNBOUNDED_FARE_AWARE, "candidates_per_request": 1})
    await make_rider(client, "Someone who rode earlier")
    await _busy_drivers(app, client, admin_headers, session)
    fresh = await make_driver(client, admin_headers, name="Just came on, 300 m")
    idle = await make_driver(client, admin_headers, name="Waited 59 min, nothing earned, 3 km")
    await place_driver(app, fresh.id, north(300))
    await place_driver(app, idle.id, north(3000))
    await on_shift(session, idle, online_h=3, earned=[], waited_min=59)
    await request_trip(client, await make_rider(client, "Rider"))
    report = await app.state.matcher.run_batch()
    assert report.candidates == 1
    assert [o.driver_id for o in report.offers] == [fresh.id]


async def test_the_reference_fare_is_the_median_quote_of_the_regions_last_hour(
    app: FastAPI, client: AsyncClient, session: AsyncSession
) -> None:
    now = utcnow()
    assert await candidates.reference_fare(session=session, region="montreal", now=now) is None
    totals = []
    for i, metres in enumerate((1000, 4000, 9000)):
        trip = await request_trip(
            client, await make_rider(client, f"Rider {i}"), dropoff=north(metres)
        )
        totals.append(float(trip["quote"]["total"]))
    assert len(set(totals)) == 3
    now = utcnow()
    reference = await candidates.reference_fare(session=session, region="montreal", now=now)
    assert reference == pytest.approx(float(np.median(totals)))
    # Another region's requests, and requests older than an hour, do not count.
    assert await candidates.reference_fare(session=session, region="elsewhere", now=now) is None
    later = now + candidates.REFERENCE_FARE_WINDOW * 2
    assert await candidates.reference_fare(session=session, region="montreal", now=later) is None
