"""Ratings: by the trip's rider, once, within the window, 1-5 stars; and what the driver sees."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.db import utcnow
from reputation import service
from reputation.models import RateableTrip, Rating
from tests.builders import make_driver, make_rider
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


async def count_ratings(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Rating)) or 0)


async def test_rider_rates_a_completed_trip(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip_id = await completed_trip(sessionmaker, rider, driver)

    response = await post_rating(
        client, rider, trip_id, 4, comment="  Kind, but a bit late.  ", tags=["late_pickup"]
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["trip_id"] == str(trip_id)
    assert body["stars"] == 4
    assert body["comment"] == "Kind, but a bit late."
    assert body["tags"] == ["late_pickup"]
    stored = await session.scalar(select(Rating).where(Rating.trip_id == trip_id))
    assert stored is not None
    assert stored.driver_id == driver.id and stored.rider_id == rider.id
    assert str(stored.id) == body["id"]


@pytest.mark.parametrize(
    "payload",
    [
        {"stars": 0},
        {"stars": 6},
        {"stars": -1},
        {"stars": 4.5},
        {"stars": "5"},
        {"stars": True},
        {"stars": None},
        {},
        {"stars": 5, "tags": ["not_a_tag"]},
        {"stars": 5, "tags": ["friendly", "friendly"]},
        {"stars": 5, "tags": "friendly"},
        {"stars": 5, "comment": "x" * 1001},
        {"stars": 5, "driver_id": "someone"},
    ],
)
async def test_bad_ratings_are_422_and_write_nothing(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    payload: dict[str, Any],
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip_id = await completed_trip(sessionmaker, rider, driver)

    response = await client.post(f"/v1/trips/{trip_id}/rating", json=payload, headers=rider.headers)

    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"], problem
    assert await count_ratings(session) == 0


async def test_an_unknown_tag_is_named(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip_id = await completed_trip(sessionmaker, rider, driver)
    response = await post_rating(client, rider, trip_id, 2, tags=["traffic", "trafic"])
    problem = assert_problem(response, 422, "validation_error")
    assert "'trafic'" in problem["detail"]
    assert problem["errors"][0]["field"] == "tags"


async def test_rating_someone_elses_trip_is_403(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    rider = await make_rider(client, "Rosa")
    other = await make_rider(client, "Otto")
    driver = await make_driver(client, admin_headers)
    trip_id = await completed_trip(sessionmaker, rider, driver)

    assert_problem(await post_rating(client, other, trip_id, 1), 403, "not_your_trip")
    assert await count_ratings(session) == 0


async def test_a_trip_is_rated_once(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip_id = await completed_trip(sessionmaker, rider, driver)

    assert (await post_rating(client, rider, trip_id, 5)).status_code == 201
    assert_problem(await post_rating(client, rider, trip_id, 1), 409, "already_rated")
    stored = (await session.scalars(select(Rating))).all()
    assert [rating.stars for rating in stored] == [5]


async def test_two_ratings_of_one_trip_at_once_exactly_one_stands(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip_id = await completed_trip(sessionmaker, rider, driver)

    first, second = await asyncio.gather(
        post_rating(client, rider, trip_id, 5), post_rating(client, rider, trip_id, 1)
    )

    assert sorted([first.status_code, second.status_code]) == [201, 409]
    loser = first if first.status_code == 409 else second
    assert loser.json()["type"] == "already_rated"
    assert await count_ratings(session) == 1


async def test_a_trip_without_a_completion_on_record_is_409(
    client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    rider = await make_rider(client)
    problem = assert_problem(
        await post_rating(client, rider, uuid.uuid4(), 5), 409, "trip_not_completed"
    )
    assert "once it is completed" in problem["detail"]
    assert await count_ratings(session) == 0


async def test_the_rating_window_closes(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    week = timedelta(days=FOUNDING.rating_window_days)
    late_trip = await completed_trip(
        sessionmaker, rider, driver, ended_ago=week + timedelta(minutes=1)
    )
    in_time_trip = await completed_trip(
        sessionmaker, rider, driver, ended_ago=week - timedelta(minutes=5)
    )

    problem = assert_problem(
        await post_rating(client, rider, late_trip, 3), 409, "rating_window_closed"
    )
    assert "7 days" in problem["detail"] and "agreement version 1" in problem["detail"]
    assert (await post_rating(client, rider, in_time_trip, 3)).status_code == 201
    assert await count_ratings(session) == 1


async def test_the_rating_window_runs_on_the_apps_clock(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    # Reputation never reads the system clock: the routes pass the app's, which a test can move.
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip_id = await completed_trip(sessionmaker, rider, driver, ended_ago=timedelta(0))
    week = timedelta(days=FOUNDING.rating_window_days)
    ended = utcnow()
    app.state.clock = lambda: ended + week + timedelta(hours=1)
    assert_problem(await post_rating(client, rider, trip_id, 3), 409, "rating_window_closed")
    in_time = ended + week - timedelta(hours=1)
    app.state.clock = lambda: in_time
    assert (await post_rating(client, rider, trip_id, 3)).status_code == 201
    rating = await session.scalar(select(Rating).where(Rating.trip_id == trip_id))
    assert rating is not None and rating.created_at == in_time


async def test_the_rating_window_is_the_agreements(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    install_policy(app, terms(rating_window_days=1))
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip_id = await completed_trip(sessionmaker, rider, driver, ended_ago=timedelta(days=2))
    assert_problem(await post_rating(client, rider, trip_id, 3), 409, "rating_window_closed")


@pytest.mark.parametrize("caller", ["driver", "admin", "anonymous"])
async def test_only_a_rider_rates(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    caller: str,
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip_id = await completed_trip(sessionmaker, rider, driver)
    headers = {"driver": driver.headers, "admin": admin_headers, "anonymous": {}}[caller]
    response = await client.post(f"/v1/trips/{trip_id}/rating", json={"stars": 5}, headers=headers)
    expected = 401 if caller == "anonymous" else 403
    assert_problem(response, expected, "unauthorized" if expected == 401 else "forbidden")


async def test_recording_a_rateable_trip_is_idempotent_and_joins_the_transaction(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip_id = uuid.uuid4()
    ended = utcnow()

    async with sessionmaker() as first:
        await service.record_rateable_trip(
            session=first,
            trip_id=trip_id,
            rider_id=rider.id,
            driver_id=driver.id,
            completed_at=ended,
            now=ended,
        )
        await first.rollback()  # the completion did not commit: nothing is rateable
    assert await session.get(RateableTrip, trip_id) is None

    for _ in range(2):
        async with sessionmaker() as again:
            await service.record_rateable_trip(
                session=again,
                trip_id=trip_id,
                rider_id=rider.id,
                driver_id=driver.id,
                completed_at=ended,
                now=ended,
            )
            await again.commit()
    count = await session.scalar(select(func.count()).select_from(RateableTrip))
    assert count == 1


async def test_a_naive_completion_time_is_refused(session: AsyncSession) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await service.record_rateable_trip(
            session=session,
            trip_id=uuid.uuid4(),
            rider_id=uuid.uuid4(),
            driver_id=uuid.uuid4(),
            completed_at=utcnow().replace(tzinfo=None),
            now=utcnow(),
        )


async def test_the_driver_sees_every_rating_with_a_pseudonym_never_the_rider(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    rosa = await make_rider(client, "Rosa Quintero")
    otto = await make_rider(client, "Otto Lindqvist")
    driver = await make_driver(client, admin_headers)
    other_driver = await make_driver(client, admin_headers)
    await rated_trip(client, sessionmaker, rosa, driver, 5, comment="Lovely", tags=["friendly"])
    await rated_trip(client, sessionmaker, rosa, driver, 4, ended_ago=timedelta(hours=1))
    await rated_trip(client, sessionmaker, otto, driver, 2, ended_ago=timedelta(hours=2))
    await rated_trip(client, sessionmaker, rosa, other_driver, 3)

    response = await client.get("/v1/drivers/me/ratings", headers=driver.headers)

    assert response.status_code == 200
    ratings = response.json()
    assert [r["stars"] for r in ratings] == [5, 4, 2]  # newest trip first
    assert set(ratings[0]) == {
        "id",
        "trip_id",
        "stars",
        "comment",
        "tags",
        "rater",
        "created_at",
        "trip_completed_at",
        "counted",
        "excluded_reason",
        "appeal",
    }
    assert ratings[0]["comment"] == "Lovely" and ratings[0]["tags"] == ["friendly"]
    raters = [r["rater"] for r in ratings]
    assert raters[0] == raters[1] != raters[2]  # stable per rider, distinct between riders
    assert all(rater.startswith("rider-") and len(rater) == 6 + 32 for rater in raters)  # 128 bits
    for secret in (str(rosa.id), str(otto.id), "Rosa", "Otto", rosa.id.hex, otto.id.hex):
        assert secret not in response.text
    other = (await client.get("/v1/drivers/me/ratings", headers=other_driver.headers)).json()
    assert [r["stars"] for r in other] == [3]
    assert other[0]["rater"] != raters[0]  # the same rider reads differently to each driver


async def test_every_rating_is_marked_counted_or_why_not(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    install_policy(app, terms(window=2))
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    hour = timedelta(hours=1)
    await rated_trip(client, sessionmaker, rider, driver, 1, tags=["traffic", "pricing"])
    await rated_trip(client, sessionmaker, rider, driver, 5, tags=["traffic"], ended_ago=2 * hour)
    await rated_trip(
        client, sessionmaker, rider, driver, 2, tags=["rude", "traffic"], ended_ago=3 * hour
    )
    await rated_trip(client, sessionmaker, rider, driver, 3, ended_ago=4 * hour)

    ratings = (await client.get("/v1/drivers/me/ratings", headers=driver.headers)).json()

    assert [(r["stars"], r["counted"], r["excluded_reason"]) for r in ratings] == [
        (1, False, "excluded_tags"),  # every tag outside the driver's control
        (5, True, None),  # five stars: nothing was marked down
        (2, True, None),  # "rude" is the driver's doing
        (3, False, "beyond_window"),  # the window holds the last two that can count
    ]


async def test_riders_cannot_read_a_drivers_ratings(client: AsyncClient) -> None:
    rider = await make_rider(client)
    response = await client.get("/v1/drivers/me/ratings", headers=rider.headers)
    assert_problem(response, 403, "forbidden")


async def test_the_tag_list_says_which_tags_the_agreement_excludes(client: AsyncClient) -> None:
    response = await client.get("/v1/ratings/tags")
    assert response.status_code == 200
    body = response.json()
    assert body["agreement_version"] == 1
    by_code = {tag["code"]: tag for tag in body["tags"]}
    assert {"traffic", "pricing", "app_problem"} <= set(by_code)
    excluded = {code for code, tag in by_code.items() if tag["excluded_by_agreement"]}
    assert excluded == {"traffic", "pricing", "app_problem"}
    assert by_code["weather"]["outside_driver_control"] is True
    assert by_code["weather"]["excluded_by_agreement"] is False
    assert by_code["rude"]["outside_driver_control"] is False
