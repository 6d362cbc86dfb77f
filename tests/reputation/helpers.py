"""Helpers of the reputation tests: agreement terms to test with, and completed trips.

Completed trips are recorded the way dispatch records them, through
`reputation.service.record_rateable_trip` in a transaction of its own.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.db import utcnow
from reputation import service
from reputation.policy import ReputationPolicy
from tests.builders import Account

# The founding agreement's reputation terms (docs/agreement.md).
FOUNDING = ReputationPolicy(
    agreement_version=1,
    window=100,
    min_ratings=20,
    prior_mean=Decimal("4.7"),
    prior_weight=10,
    rating_window_days=7,
    appeal_window_days=30,
    review_due_days=14,
    support_threshold=Decimal("4.2"),
    excluded_tags=frozenset({"traffic", "pricing", "app_problem"}),
)


def terms(**changes: Any) -> ReputationPolicy:
    return dataclasses.replace(FOUNDING, **changes)


def install_policy(app: FastAPI, policy: ReputationPolicy) -> None:
    """Puts these terms in force for the app, as the composition root does with the agreement."""

    async def source(session: AsyncSession, at: datetime) -> ReputationPolicy:
        return policy

    app.state.reputation_policy_source = source


async def completed_trip(
    sessionmaker: async_sessionmaker[AsyncSession],
    rider: Account,
    driver: Account,
    *,
    ended_ago: timedelta = timedelta(minutes=5),
    trip_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Records a completed trip of `rider` with `driver`, as dispatch does, and commits."""
    trip_id = trip_id or uuid.uuid4()
    async with sessionmaker() as session:
        await service.record_rateable_trip(
            session=session,
            trip_id=trip_id,
            rider_id=rider.id,
            driver_id=driver.id,
            completed_at=utcnow() - ended_ago,
            now=utcnow(),
        )
        await session.commit()
    return trip_id


async def post_rating(
    client: AsyncClient,
    rider: Account,
    trip_id: uuid.UUID,
    stars: int,
    **fields: Any,
) -> Response:
    return await client.post(
        f"/v1/trips/{trip_id}/rating", json={"stars": stars, **fields}, headers=rider.headers
    )


async def rated_trip(
    client: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    rider: Account,
    driver: Account,
    stars: int,
    *,
    ended_ago: timedelta = timedelta(minutes=5),
    **fields: Any,
) -> dict[str, Any]:
    """A completed trip, rated; answers the rating."""
    trip_id = await completed_trip(sessionmaker, rider, driver, ended_ago=ended_ago)
    response = await post_rating(client, rider, trip_id, stars, **fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == type_
    assert body["status"] == status
    assert body["detail"]
    return body
