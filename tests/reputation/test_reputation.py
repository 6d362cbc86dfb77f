"""The explained score, support below the threshold, and no deactivation from any number."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.audit import AuditEntry
from drivers.models import Driver, DriverStatus, DriverStatusChange
from reputation.models import SupportCase
from tests.builders import Account, make_driver, make_rider
from tests.reputation.helpers import (
    FOUNDING,
    assert_problem,
    completed_trip,
    install_policy,
    post_rating,
    rated_trip,
    terms,
)


@pytest.fixture(autouse=True)
def _founding_terms(app: FastAPI) -> None:
    install_policy(app, FOUNDING)


async def rate_many(
    client: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    driver: Account,
    stars: list[int],
    *,
    start: timedelta = timedelta(minutes=5),
) -> None:
    """One rider per rating, each trip ending a minute before the one listed before it."""
    for index, value in enumerate(stars):
        rider = await make_rider(client)
        await rated_trip(
            client, sessionmaker, rider, driver, value, ended_ago=start + timedelta(minutes=index)
        )


async def reputation_of(client: AsyncClient, driver: Account) -> dict[str, Any]:
    response = await client.get("/v1/drivers/me/reputation", headers=driver.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_score_is_explained_in_words_and_numbers(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    driver = await make_driver(client, admin_headers)
    await rate_many(client, sessionmaker, driver, [5] * 16 + [4] * 4)
    rider = await make_rider(client)
    await rated_trip(client, sessionmaker, rider, driver, 1, tags=["traffic", "app_problem"])

    body = await reputation_of(client, driver)

    # (10 × 4.7 + 16×5 + 4×4) / (10 + 20) = 143 / 30 = 4.7666… -> 4.77
    assert body["score"] == "4.77"
    assert body["ratings_counted"] == 20
    assert body["ratings_excluded"] == 1
    assert body["excluded_by_reason"] == {
        "appeal_upheld": 0,
        "excluded_tags": 1,
        "beyond_window": 0,
    }
    assert body["method"] == "bayesian_average"
    assert body["agreement_version"] == 1
    assert body["computation"] == {
        "formula": "(prior_weight × prior_mean + sum of counted stars) / "
        "(prior_weight + counted ratings)",
        "prior_mean": "4.70",
        "prior_weight": 10,
        "window": 100,
        "min_ratings": 20,
        "excluded_tags": ["app_problem", "pricing", "traffic"],
        "ratings_counted": 20,
        "stars_sum": 96,
        "mean_of_counted": "4.80",
        "support_threshold": "4.20",
    }
    assert "(10 × 4.7 + 96) / (10 + 20) = 4.77" in body["explanation"]
    assert "agreement version 1" in body["explanation"]
    assert body["below_support_threshold"] is False
    assert body["support_case"] is None


async def test_no_score_below_the_minimum_sample(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    driver = await make_driver(client, admin_headers)
    await rate_many(client, sessionmaker, driver, [1] * 3)
    body = await reputation_of(client, driver)
    assert body["score"] is None
    assert body["ratings_counted"] == 3
    assert body["computation"]["mean_of_counted"] == "1.00"
    assert "No score is shown yet" in body["explanation"]
    assert body["support_case"] is None  # no score, no threshold


async def test_a_driver_far_below_every_threshold_stays_active(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    driver = await make_driver(client, admin_headers)
    await rate_many(client, sessionmaker, driver, [1] * 25)

    body = await reputation_of(client, driver)
    assert body["score"] == "2.06"  # (47 + 25) / 35
    assert Decimal(body["score"]) < FOUNDING.support_threshold
    assert body["below_support_threshold"] is True
    assert "a person from the co-op will reach out" in body["explanation"]
    case = body["support_case"]
    assert case is not None and case["closed_at"] is None
    assert Decimal(case["support_threshold"]) == FOUNDING.support_threshold

    me = await client.get("/v1/drivers/me", headers=driver.headers)
    assert me.json()["status"] == "active"
    stored = await session.get(Driver, driver.id)
    assert stored is not None and stored.status is DriverStatus.active
    assert await session.scalar(select(func.count()).select_from(DriverStatusChange)) == 0
    audited = await session.scalar(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.kind == "driver_status_change")
    )
    assert audited == 0
    cases = (await session.scalars(select(SupportCase))).all()
    assert len(cases) == 1  # one case for the whole dip, not one per rating


async def test_one_support_case_per_dip(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    install_policy(
        app, terms(window=2, min_ratings=2, prior_weight=0, support_threshold=Decimal("3"))
    )
    driver = await make_driver(client, admin_headers)

    await rate_many(client, sessionmaker, driver, [1, 1], start=timedelta(hours=3))
    first = (await reputation_of(client, driver))["support_case"]
    assert first is not None and first["score"] == "1.00" and first["recovered_at"] is None

    await rate_many(client, sessionmaker, driver, [5, 5], start=timedelta(hours=2))
    assert (await reputation_of(client, driver))["score"] == "5.00"
    recovered = (await session.scalars(select(SupportCase))).one()
    assert recovered.recovered_at is not None
    assert recovered.closed_at is None  # still for a person to close

    await rate_many(client, sessionmaker, driver, [1, 1], start=timedelta(hours=1))
    cases = (await session.scalars(select(SupportCase).order_by(SupportCase.opened_at))).all()
    assert len(cases) == 2
    assert cases[1].recovered_at is None
    assert (await reputation_of(client, driver))["support_case"]["id"] == str(cases[1].id)


async def test_ratings_at_once_open_a_single_case(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    install_policy(app, terms(min_ratings=1, prior_weight=0))
    driver = await make_driver(client, admin_headers)
    riders = [await make_rider(client) for _ in range(6)]
    trips = [await completed_trip(sessionmaker, rider, driver) for rider in riders]

    responses = await asyncio.gather(
        *(post_rating(client, rider, trip, 1) for rider, trip in zip(riders, trips, strict=True))
    )

    assert [r.status_code for r in responses] == [201] * 6
    assert await session.scalar(select(func.count()).select_from(SupportCase)) == 1


async def test_a_person_closes_a_support_case(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    install_policy(app, terms(min_ratings=1, prior_weight=0))
    driver = await make_driver(client, admin_headers)
    await rate_many(client, sessionmaker, driver, [2])

    listed = await client.get("/v1/support-cases?status=open", headers=admin_headers)
    assert listed.status_code == 200
    [case] = listed.json()
    assert case["driver_id"] == str(driver.id)

    for caller in (driver.headers, {}):
        response = await client.get("/v1/support-cases", headers=caller)
        assert response.status_code in {401, 403}
    assert_problem(
        await client.post(
            f"/v1/support-cases/{case['id']}/close", json={"note": " "}, headers=admin_headers
        ),
        422,
        "validation_error",
    )
    closed = await client.post(
        f"/v1/support-cases/{case['id']}/close",
        json={"note": "Called; offered a ride-along with a mentor"},
        headers=admin_headers,
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["closed_at"] is not None
    assert closed.json()["note"] == "Called; offered a ride-along with a mentor"
    assert_problem(
        await client.post(
            f"/v1/support-cases/{case['id']}/close", json={"note": "again"}, headers=admin_headers
        ),
        409,
        "support_case_closed",
    )
    assert_problem(
        await client.post(
            f"/v1/support-cases/{uuid.uuid4()}/close", json={"note": "x"}, headers=admin_headers
        ),
        404,
        "support_case_not_found",
    )
    assert (await client.get("/v1/support-cases?status=open", headers=admin_headers)).json() == []
    assert len((await client.get("/v1/support-cases", headers=admin_headers)).json()) == 1
    # Closed, but the dip goes on: the driver still sees the case and its note.
    seen = (await reputation_of(client, driver))["support_case"]
    assert seen["id"] == case["id"] and seen["closed_at"] is not None


async def test_a_removed_rating_can_lift_a_driver_out_of_a_dip(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    install_policy(app, terms(min_ratings=1, prior_weight=0, support_threshold=Decimal("3")))
    driver = await make_driver(client, admin_headers)
    reviewer = await make_driver(client, admin_headers, reviewer=True)
    await rate_many(client, sessionmaker, driver, [5])
    rider = await make_rider(client)
    low = await rated_trip(client, sessionmaker, rider, driver, 1)  # (5 + 1) / 2 = 3.00
    low2 = await rated_trip(
        client, sessionmaker, await make_rider(client), driver, 1
    )  # 7 / 3 = 2.33
    assert (await reputation_of(client, driver))["support_case"] is not None

    for rating in (low, low2):
        appeal = await client.post(
            f"/v1/ratings/{rating['id']}/appeal",
            json={"statement": "Not my doing"},
            headers=driver.headers,
        )
        decided = await client.post(
            f"/v1/appeals/{appeal.json()['id']}/decision",
            json={"outcome": "rating_removed", "reason": "Agreed"},
            headers=reviewer.headers,
        )
        assert decided.status_code == 200

    assert (await reputation_of(client, driver))["score"] == "5.00"
    case = (await session.scalars(select(SupportCase))).one()
    assert case.recovered_at is not None


async def test_riders_and_anonymous_callers_have_no_reputation(client: AsyncClient) -> None:
    rider = await make_rider(client)
    assert_problem(
        await client.get("/v1/drivers/me/reputation", headers=rider.headers), 403, "forbidden"
    )
    assert_problem(await client.get("/v1/drivers/me/reputation"), 401, "unauthorized")
