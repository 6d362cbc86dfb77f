"""Appeals: filed by the rated driver, decided by a person, announced, audited, never lost."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.audit import AuditEntry
from coop.pubsub import driver_channel
from coop.redis_client import Redis
from reputation.models import Appeal, Rating
from tests.builders import Account, make_driver, make_rider
from tests.reputation.helpers import (
    FOUNDING,
    assert_problem,
    install_policy,
    rated_trip,
    terms,
)

STATEMENT = "The rider asked for a detour through a closed street; I followed the detour signs."


@pytest.fixture(autouse=True)
def _founding_terms(app: FastAPI) -> None:
    install_policy(app, FOUNDING)


async def file(client: AsyncClient, driver: Account, rating_id: str, **body: Any) -> Any:
    return await client.post(
        f"/v1/ratings/{rating_id}/appeal",
        json=body or {"statement": STATEMENT},
        headers=driver.headers,
    )


async def decide(
    client: AsyncClient, reviewer: Account, appeal_id: str, outcome: str, reason: str
) -> Any:
    return await client.post(
        f"/v1/appeals/{appeal_id}/decision",
        json={"outcome": outcome, "reason": reason},
        headers=reviewer.headers,
    )


@pytest.fixture
async def scene(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> dict[str, Any]:
    """A rider, a driver with one two-star rating, and two reviewers."""
    rider = await make_rider(client, "Rosa Quintero")
    driver = await make_driver(client, admin_headers, name="Dana Driver")
    rating = await rated_trip(
        client, sessionmaker, rider, driver, 2, comment="Took forever", tags=["wrong_route"]
    )
    return {
        "rider": rider,
        "driver": driver,
        "rating": rating,
        "reviewer": await make_driver(client, admin_headers, name="Rev One", reviewer=True),
        "reviewer2": await make_driver(client, admin_headers, name="Rev Two", reviewer=True),
    }


async def test_the_rated_driver_appeals(client: AsyncClient, scene: dict[str, Any]) -> None:
    response = await file(client, scene["driver"], scene["rating"]["id"])

    assert response.status_code == 201, response.text
    appeal = response.json()
    assert appeal["status"] == "open"
    assert appeal["overdue"] is False
    assert appeal["statement"] == STATEMENT
    assert appeal["rating_id"] == scene["rating"]["id"]
    assert appeal["driver_id"] == str(scene["driver"].id)
    assert appeal["outcome"] is None and appeal["reason"] is None
    filed = datetime.fromisoformat(appeal["filed_at"])
    assert datetime.fromisoformat(appeal["due_by"]) - filed == timedelta(days=14)
    assert appeal["rating"]["stars"] == 2
    assert appeal["rating"]["comment"] == "Took forever"
    assert appeal["rating"]["rater"].startswith("rider-")
    assert str(scene["rider"].id) not in response.text and "Rosa" not in response.text

    mine = (await client.get("/v1/drivers/me/ratings", headers=scene["driver"].headers)).json()
    assert mine[0]["appeal"]["id"] == appeal["id"]
    assert mine[0]["appeal"]["status"] == "open"


async def test_review_due_days_are_the_agreements(
    app: FastAPI, client: AsyncClient, scene: dict[str, Any]
) -> None:
    install_policy(app, terms(review_due_days=3))
    appeal = (await file(client, scene["driver"], scene["rating"]["id"])).json()
    due = datetime.fromisoformat(appeal["due_by"]) - datetime.fromisoformat(appeal["filed_at"])
    assert due == timedelta(days=3)


async def test_appealing_another_drivers_rating_is_403(
    client: AsyncClient, admin_headers: dict[str, str], scene: dict[str, Any]
) -> None:
    stranger = await make_driver(client, admin_headers)
    assert_problem(await file(client, stranger, scene["rating"]["id"]), 403, "not_your_rating")
    assert_problem(
        await file(client, scene["reviewer"], scene["rating"]["id"]), 403, "not_your_rating"
    )


async def test_appealing_an_unknown_rating_is_404(
    client: AsyncClient, scene: dict[str, Any]
) -> None:
    assert_problem(await file(client, scene["driver"], str(uuid.uuid4())), 404, "rating_not_found")


async def test_a_rating_is_appealed_once(
    client: AsyncClient, scene: dict[str, Any], session: AsyncSession
) -> None:
    assert (await file(client, scene["driver"], scene["rating"]["id"])).status_code == 201
    problem = assert_problem(
        await file(client, scene["driver"], scene["rating"]["id"]), 409, "already_appealed"
    )
    assert "appealed once" in problem["detail"]
    assert await session.scalar(select(func.count()).select_from(Appeal)) == 1


async def test_two_appeals_of_one_rating_at_once_exactly_one_stands(
    client: AsyncClient, scene: dict[str, Any], session: AsyncSession
) -> None:
    first, second = await asyncio.gather(
        file(client, scene["driver"], scene["rating"]["id"]),
        file(client, scene["driver"], scene["rating"]["id"], statement="Second thoughts"),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    assert await session.scalar(select(func.count()).select_from(Appeal)) == 1


async def test_a_late_appeal_is_409(
    client: AsyncClient, scene: dict[str, Any], session: AsyncSession
) -> None:
    rating_id = uuid.UUID(scene["rating"]["id"])
    await session.execute(
        update(Rating)
        .where(Rating.id == rating_id)
        .values(created_at=Rating.created_at - timedelta(days=30, minutes=1))
    )
    await session.commit()
    problem = assert_problem(
        await file(client, scene["driver"], str(rating_id)), 409, "appeal_window_closed"
    )
    assert "30 days" in problem["detail"]
    assert await session.scalar(select(func.count()).select_from(Appeal)) == 0


async def test_an_appeal_just_inside_the_window_is_accepted(
    client: AsyncClient, scene: dict[str, Any], session: AsyncSession
) -> None:
    rating_id = uuid.UUID(scene["rating"]["id"])
    await session.execute(
        update(Rating)
        .where(Rating.id == rating_id)
        .values(created_at=Rating.created_at - timedelta(days=29, hours=23))
    )
    await session.commit()
    assert (await file(client, scene["driver"], str(rating_id))).status_code == 201


@pytest.mark.parametrize(
    "body",
    [{"statement": ""}, {"statement": "   "}, {"statement": "x" * 2001}, {"text": "hi"}],
)
async def test_an_appeal_needs_a_statement(
    client: AsyncClient, scene: dict[str, Any], session: AsyncSession, body: dict[str, Any]
) -> None:
    response = await client.post(
        f"/v1/ratings/{scene['rating']['id']}/appeal", json=body, headers=scene["driver"].headers
    )
    assert_problem(response, 422, "validation_error")
    assert await session.scalar(select(func.count()).select_from(Appeal)) == 0


async def test_a_rider_cannot_appeal(client: AsyncClient, scene: dict[str, Any]) -> None:
    response = await client.post(
        f"/v1/ratings/{scene['rating']['id']}/appeal",
        json={"statement": STATEMENT},
        headers=scene["rider"].headers,
    )
    assert_problem(response, 403, "forbidden")


async def test_reviewers_see_every_open_appeal_oldest_due_first_drivers_their_own(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    scene: dict[str, Any],
) -> None:
    other = await make_driver(client, admin_headers)
    other_rating = await rated_trip(client, sessionmaker, scene["rider"], other, 1)
    first = (await file(client, scene["driver"], scene["rating"]["id"])).json()
    second = (await file(client, other, other_rating["id"])).json()
    # The second appeal falls due earlier (filed under shorter terms, say).
    await session.execute(
        update(Appeal)
        .where(Appeal.id == uuid.UUID(second["id"]))
        .values(due_by=Appeal.due_by - timedelta(days=5))
    )
    await session.commit()

    listed = await client.get("/v1/appeals?status=open", headers=scene["reviewer"].headers)
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()] == [second["id"], first["id"]]
    own = await client.get("/v1/appeals", headers=scene["driver"].headers)
    assert [a["id"] for a in own.json()] == [first["id"]]
    assert_problem(
        await client.get("/v1/appeals?status=whatever", headers=scene["reviewer"].headers),
        422,
        "validation_error",
    )
    one = await client.get(f"/v1/appeals/{first['id']}", headers=scene["reviewer"].headers)
    assert one.status_code == 200 and one.json()["id"] == first["id"]
    assert (
        await client.get(f"/v1/appeals/{first['id']}", headers=scene["driver"].headers)
    ).status_code == 200
    assert_problem(
        await client.get(f"/v1/appeals/{first['id']}", headers=other.headers), 403, "forbidden"
    )
    assert_problem(
        await client.get(f"/v1/appeals/{uuid.uuid4()}", headers=other.headers),
        404,
        "appeal_not_found",
    )


async def test_an_overdue_appeal_is_shown_overdue(
    client: AsyncClient, scene: dict[str, Any], session: AsyncSession
) -> None:
    appeal = (await file(client, scene["driver"], scene["rating"]["id"])).json()
    await session.execute(
        update(Appeal)
        .where(Appeal.id == uuid.UUID(appeal["id"]))
        .values(
            filed_at=Appeal.filed_at - timedelta(days=15),
            due_by=Appeal.due_by - timedelta(days=15),
        )
    )
    await session.commit()

    overdue = await client.get("/v1/appeals?status=overdue", headers=scene["reviewer"].headers)
    assert [(a["id"], a["overdue"]) for a in overdue.json()] == [(appeal["id"], True)]
    mine = (await client.get("/v1/drivers/me/ratings", headers=scene["driver"].headers)).json()
    assert mine[0]["appeal"]["overdue"] is True

    # Deciding late is still deciding; a decided appeal is no longer overdue.
    decided = await decide(client, scene["reviewer"], appeal["id"], "rating_stands", "Reviewed")
    assert decided.status_code == 200 and decided.json()["overdue"] is False
    assert (
        await client.get("/v1/appeals?status=overdue", headers=scene["reviewer"].headers)
    ).json() == []


async def test_a_reviewer_removes_a_rating_and_the_appellant_is_told(
    client: AsyncClient,
    scene: dict[str, Any],
    redis: Redis,
    session: AsyncSession,
) -> None:
    appeal = (await file(client, scene["driver"], scene["rating"]["id"])).json()
    subscription = redis.pubsub()
    await subscription.subscribe(driver_channel(scene["driver"].id))
    try:
        response = await decide(
            client, scene["reviewer"], appeal["id"], "rating_removed", "The detour was signposted"
        )
        assert response.status_code == 200, response.text
        decided = response.json()
        assert decided["status"] == "decided"
        assert decided["outcome"] == "rating_removed"
        assert decided["reason"] == "The detour was signposted"
        assert decided["decided_at"] is not None

        frame = None
        for _ in range(50):
            message = await subscription.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is not None:
                frame = json.loads(message["data"])
                break
        assert frame is not None, "no appeal_decided frame was published"
        assert frame["type"] == "appeal_decided"
        assert frame["appeal"]["id"] == appeal["id"]
        assert frame["appeal"]["outcome"] == "rating_removed"
    finally:
        await subscription.unsubscribe()
        await subscription.aclose()

    # The rating stays visible, marked why it no longer counts.
    mine = (await client.get("/v1/drivers/me/ratings", headers=scene["driver"].headers)).json()
    assert mine[0]["id"] == scene["rating"]["id"]
    assert mine[0]["counted"] is False
    assert mine[0]["excluded_reason"] == "appeal_upheld"
    assert mine[0]["appeal"]["outcome"] == "rating_removed"
    standing = await client.get("/v1/drivers/me/reputation", headers=scene["driver"].headers)
    assert standing.json()["ratings_counted"] == 0
    assert standing.json()["excluded_by_reason"]["appeal_upheld"] == 1


async def test_a_rating_that_stands_still_counts(
    client: AsyncClient, scene: dict[str, Any]
) -> None:
    appeal = (await file(client, scene["driver"], scene["rating"]["id"])).json()
    response = await decide(client, scene["reviewer"], appeal["id"], "rating_stands", "Fair")
    assert response.status_code == 200
    mine = (await client.get("/v1/drivers/me/ratings", headers=scene["driver"].headers)).json()
    assert mine[0]["counted"] is True and mine[0]["excluded_reason"] is None
    assert mine[0]["appeal"]["outcome"] == "rating_stands"


async def test_the_decision_enters_the_audit_log_without_personal_data(
    client: AsyncClient, scene: dict[str, Any], session: AsyncSession
) -> None:
    appeal = (await file(client, scene["driver"], scene["rating"]["id"])).json()
    reason = "Spoke with Dana; the route matched the detour"
    assert (
        await decide(client, scene["reviewer"], appeal["id"], "rating_removed", reason)
    ).status_code == 200

    entries = (
        await session.scalars(select(AuditEntry).where(AuditEntry.kind == "appeal_decision"))
    ).all()
    assert len(entries) == 1
    entry = entries[0]
    assert entry.subject == f"appeal:{appeal['id']}"
    assert entry.content["outcome"] == "rating_removed"
    assert entry.content["rating_id"] == scene["rating"]["id"]
    published = json.dumps((await client.get("/v1/audit")).json())
    assert appeal["id"] in published
    for personal in (
        reason,
        STATEMENT,
        "Took forever",
        "Dana",
        "Rosa",
        "Rev One",
        str(scene["driver"].id),
        str(scene["rider"].id),
        str(scene["reviewer"].id),
    ):
        assert personal not in published


async def test_only_a_reviewer_decides(
    client: AsyncClient, admin_headers: dict[str, str], scene: dict[str, Any], session: AsyncSession
) -> None:
    appeal = (await file(client, scene["driver"], scene["rating"]["id"])).json()
    plain_driver = await make_driver(client, admin_headers)
    for caller in (plain_driver.headers, scene["rider"].headers, admin_headers):
        response = await client.post(
            f"/v1/appeals/{appeal['id']}/decision",
            json={"outcome": "rating_removed", "reason": "Because"},
            headers=caller,
        )
        assert_problem(response, 403, "forbidden")
    stored = await session.get(Appeal, uuid.UUID(appeal["id"]))
    assert stored is not None and stored.status.value == "open"


async def test_the_appellant_never_decides_their_own_appeal(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    scene: dict[str, Any],
    session: AsyncSession,
) -> None:
    reviewer = scene["reviewer"]
    rating = await rated_trip(client, sessionmaker, scene["rider"], reviewer, 1)
    appeal = (await file(client, reviewer, rating["id"])).json()
    assert_problem(
        await decide(client, reviewer, appeal["id"], "rating_removed", "Mine is right"),
        403,
        "own_appeal",
    )
    stored = await session.get(Appeal, uuid.UUID(appeal["id"]))
    assert stored is not None and stored.status.value == "open"
    assert (
        await decide(client, scene["reviewer2"], appeal["id"], "rating_stands", "Seen")
    ).status_code == 200


async def test_an_appeal_is_decided_once(client: AsyncClient, scene: dict[str, Any]) -> None:
    appeal = (await file(client, scene["driver"], scene["rating"]["id"])).json()
    assert (
        await decide(client, scene["reviewer"], appeal["id"], "rating_stands", "Fair")
    ).status_code == 200
    assert_problem(
        await decide(client, scene["reviewer2"], appeal["id"], "rating_removed", "Unfair"),
        409,
        "appeal_already_decided",
    )
    assert_problem(
        await decide(client, scene["reviewer"], str(uuid.uuid4()), "rating_removed", "No"),
        404,
        "appeal_not_found",
    )


async def test_two_reviewers_deciding_at_once_exactly_one_decision_stands(
    client: AsyncClient, scene: dict[str, Any], session: AsyncSession
) -> None:
    appeal = (await file(client, scene["driver"], scene["rating"]["id"])).json()

    first, second = await asyncio.gather(
        decide(client, scene["reviewer"], appeal["id"], "rating_removed", "Removed by one"),
        decide(client, scene["reviewer2"], appeal["id"], "rating_stands", "Stands by two"),
    )

    assert sorted([first.status_code, second.status_code]) == [200, 409]
    winner, loser = (first, second) if first.status_code == 200 else (second, first)
    assert loser.json()["type"] == "appeal_already_decided"
    stored = await session.get(Appeal, uuid.UUID(appeal["id"]))
    assert stored is not None
    assert stored.outcome is not None and stored.outcome.value == winner.json()["outcome"]
    assert stored.reason == winner.json()["reason"]
    audited = await session.scalar(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.subject == f"appeal:{appeal['id']}")
    )
    assert audited == 1


@pytest.mark.parametrize(
    "body",
    [
        {"outcome": "rating_removed", "reason": ""},
        {"outcome": "rating_removed", "reason": "  "},
        {"outcome": "rating_removed"},
        {"outcome": "deactivate_driver", "reason": "No"},
        {"outcome": "rating_removed", "reason": "x" * 2001},
    ],
)
async def test_a_decision_needs_an_outcome_and_a_written_reason(
    client: AsyncClient, scene: dict[str, Any], session: AsyncSession, body: dict[str, Any]
) -> None:
    appeal = (await file(client, scene["driver"], scene["rating"]["id"])).json()
    response = await client.post(
        f"/v1/appeals/{appeal['id']}/decision", json=body, headers=scene["reviewer"].headers
    )
    assert_problem(response, 422, "validation_error")
    stored = await session.get(Appeal, uuid.UUID(appeal["id"]))
    assert stored is not None and stored.status.value == "open"
