"""Transparency: the public ratings report, the data register, and each person's export."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.db import utcnow
from reputation import data_register, score
from reputation.models import Appeal, AppealOutcome, AppealStatus, RateableTrip, Rating
from reputation.transparency import classification_counts
from tests.builders import Account, make_driver, make_rider
from tests.reputation.helpers import FOUNDING, install_policy, rated_trip, terms


@pytest.fixture(autouse=True)
def _founding_terms(app: FastAPI) -> None:
    install_policy(app, FOUNDING)


async def appeal_and_decide(
    client: AsyncClient,
    session: AsyncSession,
    driver: Account,
    reviewer: Account | None,
    rating_id: str,
    outcome: str,
    *,
    took: timedelta | None = None,
) -> str:
    appeal = await client.post(
        f"/v1/ratings/{rating_id}/appeal", json={"statement": "Please look"}, headers=driver.headers
    )
    assert appeal.status_code == 201, appeal.text
    appeal_id: str = appeal.json()["id"]
    if reviewer is None:
        return appeal_id
    decided = await client.post(
        f"/v1/appeals/{appeal_id}/decision",
        json={"outcome": outcome, "reason": "Looked"},
        headers=reviewer.headers,
    )
    assert decided.status_code == 200, decided.text
    if took is not None:  # as if it had been filed `took` before the decision
        await session.execute(
            update(Appeal)
            .where(Appeal.id == uuid.UUID(appeal_id))
            .values(
                filed_at=Appeal.decided_at - took,
                due_by=Appeal.decided_at - took + timedelta(days=14),
            )
        )
        await session.commit()
    return appeal_id


async def test_the_ratings_report(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    install_policy(app, terms(window=2))
    rider = await make_rider(client, "Rosa Quintero")
    driver = await make_driver(client, admin_headers, name="Dana Driver")
    other = await make_driver(client, admin_headers)
    reviewer = await make_driver(client, admin_headers, reviewer=True)
    hour = timedelta(hours=1)
    r5 = await rated_trip(client, sessionmaker, rider, driver, 5, comment="Secret comment")
    r1 = await rated_trip(client, sessionmaker, rider, driver, 1, ended_ago=2 * hour)
    r2 = await rated_trip(
        client, sessionmaker, rider, driver, 2, tags=["traffic"], ended_ago=3 * hour
    )
    await rated_trip(client, sessionmaker, rider, driver, 4, ended_ago=4 * hour)  # beyond window
    o3 = await rated_trip(client, sessionmaker, rider, other, 3)
    o5 = await rated_trip(client, sessionmaker, rider, other, 5, ended_ago=hour)
    await rated_trip(client, sessionmaker, rider, other, 5, ended_ago=2 * hour)

    await appeal_and_decide(
        client, session, driver, reviewer, r1["id"], "rating_removed", took=hour
    )
    await appeal_and_decide(
        client, session, driver, reviewer, r2["id"], "rating_stands", took=2 * hour
    )
    await appeal_and_decide(
        client, session, other, reviewer, o3["id"], "rating_stands", took=10 * hour
    )
    overdue = await appeal_and_decide(client, session, other, None, o5["id"], "")
    await appeal_and_decide(client, session, driver, None, r5["id"], "")  # open, not yet due
    await session.execute(
        update(Appeal)
        .where(Appeal.id == uuid.UUID(overdue))
        .values(due_by=utcnow() - timedelta(minutes=1))
    )
    await session.commit()

    response = await client.get("/v1/transparency/ratings")  # anyone may read it

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["agreement_version"] == 1
    assert body["ratings"] == {
        "total": 7,
        "distribution": {"1": 1, "2": 1, "3": 1, "4": 1, "5": 3},
        # driver: 5 counts, 1 removed, 2 (traffic) excluded, 4 counts (window 2 left after those)
        # other: 3, 5 count; the oldest 5 is beyond the window
        "counted": 4,
        "excluded": {
            "appeal_upheld": {"count": 1, "share_percent": "14.29"},
            "excluded_tags": {"count": 1, "share_percent": "14.29"},
            "beyond_window": {"count": 1, "share_percent": "14.29"},
        },
    }
    assert body["appeals"] == {
        "filed": 5,
        "open": 2,
        "decided": 3,
        "by_outcome": {"rating_removed": 1, "rating_stands": 2},
        "overdue": 1,
        "decided_after_due": 0,
        "median_time_to_decision_s": 7200,
        "p90_time_to_decision_s": 30240,  # 2 h + 0.8 × (10 h − 2 h), interpolated
    }
    assert body["terms"]["window"] == 2
    for personal in ("Secret comment", "Rosa", "Dana", str(driver.id), str(rider.id)):
        assert personal not in response.text


async def test_an_empty_report(client: AsyncClient) -> None:
    body = (await client.get("/v1/transparency/ratings")).json()
    assert body["ratings"]["total"] == 0
    assert body["ratings"]["excluded"]["beyond_window"] == {"count": 0, "share_percent": "0.00"}
    assert body["appeals"]["median_time_to_decision_s"] is None
    assert body["appeals"]["p90_time_to_decision_s"] is None


async def test_the_reports_sql_classifies_as_the_score_module_does(
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
) -> None:
    """The report's SQL and reputation.score must never disagree about a rating."""
    chooser = random.Random(20261122)
    rider = await make_rider(client)
    drivers = [await make_driver(client, admin_headers) for _ in range(3)]
    now = utcnow()
    facts: dict[uuid.UUID, list[score.RatingFact]] = {driver.id: [] for driver in drivers}
    for index in range(90):
        driver = chooser.choice(drivers)
        completed = now - timedelta(minutes=chooser.randrange(0, 5000))
        trip = RateableTrip(
            trip_id=uuid.uuid4(), rider_id=rider.id, driver_id=driver.id, completed_at=completed
        )
        # Ties in trip end times are settled by when rated, then by id, in both.
        created = completed + timedelta(minutes=chooser.choice([1, 1, 2]))
        tags = chooser.sample(
            ["traffic", "pricing", "rude", "friendly", "weather"], k=chooser.randrange(0, 3)
        )
        rating = Rating(
            id=uuid.uuid4(),
            trip_id=trip.trip_id,
            driver_id=driver.id,
            rider_id=rider.id,
            stars=chooser.randint(1, 5),
            comment=None,
            tags=tags,
            trip_completed_at=completed,
            created_at=created,
        )
        session.add_all([trip, rating])
        removed = chooser.random() < 0.15
        if removed or chooser.random() < 0.1:
            session.add(
                Appeal(
                    id=uuid.uuid4(),
                    rating_id=rating.id,
                    driver_id=driver.id,
                    statement="s",
                    status=AppealStatus.decided,
                    filed_at=created,
                    due_by=created + timedelta(days=14),
                    outcome=AppealOutcome.rating_removed
                    if removed
                    else AppealOutcome.rating_stands,
                    reason="r",
                    decided_at=created + timedelta(hours=1),
                )
            )
        facts[driver.id].append(
            score.RatingFact(
                id=rating.id,
                stars=rating.stars,
                tags=frozenset(tags),
                trip_completed_at=completed,
                created_at=created,
                removed_on_appeal=removed,
            )
        )
        if index % 30 == 29:
            await session.flush()
    await session.commit()

    for window in (1, 5, 12, 100):
        policy = terms(window=window, excluded_tags=frozenset({"traffic", "pricing", "weather"}))
        expected: dict[score.ExcludedReason | None, int] = {
            None: 0,
            **dict.fromkeys(score.ExcludedReason, 0),
        }
        for driver_facts in facts.values():
            for reason in score.classify(driver_facts, policy).values():
                expected[reason] += 1
        assert await classification_counts(session=session, policy=policy) == expected, window


async def test_the_register_is_published(client: AsyncClient) -> None:
    response = await client.get("/v1/transparency/data")
    assert response.status_code == 200
    body = response.json()
    assert body["sold"] is False
    assert "No personal data is sold" in body["statement"]
    kinds = {kind["kind"]: kind for kind in body["kinds"]}
    assert set(kinds) == {kind.key for kind in data_register.REGISTER}
    ratings = kinds["ratings"]
    assert ratings["sold"] is False
    assert ratings["stored_in"] == [
        {
            "table": "reputation_rating",
            "columns": ["*"],
            "where": "PostgreSQL table reputation_rating (every column)",
        }
    ]
    assert ratings["retention"] and ratings["readers"]
    assert {entry["table"] for entry in body["not_personal"]} >= {"audit_entry"}


# --- exports ----------------------------------------------------------------------------------


async def test_a_driver_exports_everything_kept_about_them(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    rider = await make_rider(client, "Rosa Quintero")
    driver = await make_driver(client, admin_headers, name="Dana Driver", reviewer=True)
    other = await make_driver(client, admin_headers, name="Other Person")
    reviewer = await make_driver(client, admin_headers, reviewer=True)
    rating = await rated_trip(client, sessionmaker, rider, driver, 2, comment="Meh")
    other_rating = await rated_trip(client, sessionmaker, rider, other, 1)
    await appeal_and_decide(client, session, driver, reviewer, rating["id"], "rating_stands")
    decided_by_me = await appeal_and_decide(
        client, session, other, driver, other_rating["id"], "rating_removed"
    )
    await client.post(
        f"/v1/drivers/{driver.id}/status",
        json={"status": "inactive", "reason": "Asked for a pause"},
        headers=admin_headers,
    )

    response = await client.get("/v1/drivers/me/export", headers=driver.headers)

    assert response.status_code == 200, response.text
    export: dict[str, Any] = response.json()
    assert export["account"]["name"] == "Dana Driver"
    assert export["account"]["member_number"] == driver.extra["member_number"]
    assert export["account"]["status"] == "inactive"
    assert export["account"]["vehicle"]["plate"] == "FXK 123"
    assert [token["role"] for token in export["access_tokens"]] == ["driver"]
    assert [c["reason"] for c in export["status_changes"]] == ["Asked for a pause"]
    [received] = export["ratings_received"]
    assert received["comment"] == "Meh" and received["rater"].startswith("rider-")
    assert received["appeal"]["outcome"] == "rating_stands"
    assert [a["statement"] for a in export["appeals_filed"]] == ["Please look"]
    assert [a["appeal_id"] for a in export["appeals_decided_as_reviewer"]] == [decided_by_me]
    assert export["reputation"]["ratings_counted"] == 1
    assert export["support_cases"] == []
    for not_theirs in ("Rosa", str(rider.id), "Other Person", driver.token):
        assert not_theirs not in response.text


async def test_a_rider_exports_everything_kept_about_them(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    rider = await make_rider(client, "Rosa Quintero")
    someone = await make_rider(client, "Someone Else")
    driver = await make_driver(client, admin_headers, name="Dana Driver")
    rating = await rated_trip(client, sessionmaker, rider, driver, 4, comment="Good music")
    await rated_trip(client, sessionmaker, someone, driver, 1, comment="Not Rosa's")

    response = await client.get("/v1/riders/me/export", headers=rider.headers)

    assert response.status_code == 200, response.text
    export = response.json()
    assert export["account"] == {
        "id": str(rider.id),
        "name": "Rosa Quintero",
        "first_name_shared_with_drivers": None,
        "created_at": export["account"]["created_at"],
    }
    assert [r["id"] for r in export["ratings_given"]] == [rating["id"]]
    assert export["ratings_given"][0]["comment"] == "Good music"
    assert [t["trip_id"] for t in export["completed_trips_on_record"]] == [rating["trip_id"]]
    for not_theirs in ("Someone Else", "Not Rosa's", "Dana Driver", rider.token):
        assert not_theirs not in response.text


async def test_packages_add_their_own_sections_to_an_export(
    app: FastAPI, client: AsyncClient
) -> None:
    from reputation.export import register_section

    async def favourite_places(session: AsyncSession, subject_id: uuid.UUID) -> list[str]:
        return [f"home of {subject_id}"]

    register_section(app, audience="rider", name="favourite_places", section=favourite_places)
    with pytest.raises(ValueError, match="built in"):
        register_section(app, audience="rider", name="account", section=favourite_places)
    rider = await make_rider(client)
    export = (await client.get("/v1/riders/me/export", headers=rider.headers)).json()
    assert export["favourite_places"] == [f"home of {rider.id}"]


@pytest.mark.parametrize(
    ("path", "wrong"), [("/v1/drivers/me/export", "rider"), ("/v1/riders/me/export", "driver")]
)
async def test_an_export_is_only_the_callers(
    client: AsyncClient, admin_headers: dict[str, str], path: str, wrong: str
) -> None:
    assert (await client.get(path)).status_code == 401
    caller = (
        await make_rider(client) if wrong == "rider" else await make_driver(client, admin_headers)
    )
    assert (await client.get(path, headers=caller.headers)).status_code == 403
    assert (await client.get(path, headers=admin_headers)).status_code == 403


async def test_the_public_reports_are_typed_and_keep_their_wire_shape(client: AsyncClient) -> None:
    """The two reports that were dicts have response models (named in the API's schema) and
    send the JSON they always sent: the same keys in the same order, the time as the clock's
    own ISO text."""
    body = (await client.get("/v1/transparency/ratings")).json()
    assert list(body) == [
        "generated_at",
        "agreement_version",
        "ratings",
        "appeals",
        "support_cases",
        "terms",
    ]
    assert body["generated_at"].endswith("+00:00")
    assert list(body["ratings"]) == ["total", "distribution", "counted", "excluded"]
    assert body["support_cases"] == {"opened": 0, "open": 0}
    assert list(body["terms"]) == [
        "agreement_version",
        "window",
        "min_ratings",
        "prior_mean",
        "prior_weight",
        "excluded_tags",
    ]
    assert isinstance(body["terms"]["prior_mean"], str)
    register = (await client.get("/v1/transparency/data")).json()
    assert list(register) == ["sold", "statement", "readers_note", "kinds", "not_personal"]
    assert list(register["kinds"][0]) == [
        "kind",
        "description",
        "purpose",
        "stored_in",
        "retention",
        "readers",
        "exported_in",
        "sold",
    ]
    schema = (await client.get("/openapi.json")).json()
    for path, model in (
        ("/v1/transparency/ratings", "RatingsReportOut"),
        ("/v1/transparency/data", "DataRegisterOut"),
    ):
        answer = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert answer["schema"]["$ref"].endswith(f"/{model}")


async def test_the_exports_are_typed_and_send_what_the_export_module_writes(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    """The two exports have response models (named in the API's schema), and their JSON is
    the document `reputation.export` writes, key for key and in the same order: the model
    checks the shape without changing a byte of it."""
    import json

    from coop.state import state_of
    from drivers.models import Driver
    from reputation import export
    from reputation.state import ReputationState
    from riders.models import Rider

    async def favourite_places(session: AsyncSession, subject_id: uuid.UUID) -> list[str]:
        return [f"home of {subject_id}"]

    export.register_section(
        app, audience="rider", name="favourite_places", section=favourite_places
    )
    rider = await make_rider(client, "Rosa Quintero")
    driver = await make_driver(client, admin_headers, name="Dana Driver", reviewer=True)
    reviewer = await make_driver(client, admin_headers, reviewer=True)
    rating = await rated_trip(client, sessionmaker, rider, driver, 2, comment="Meh")
    await appeal_and_decide(client, session, driver, reviewer, rating["id"], "rating_stands")
    state = state_of(app, ReputationState)

    def without_time(document: dict[str, Any]) -> str:
        assert document["exported_at"].endswith("+00:00")
        return json.dumps({k: v for k, v in document.items() if k != "exported_at"})

    sent = (await client.get("/v1/drivers/me/export", headers=driver.headers)).json()
    async with sessionmaker() as reading:
        written = await export.driver_export(
            app=app,
            session=reading,
            policy_source=state.reputation_policy_source,
            driver=await reading.get(Driver, driver.id),  # type: ignore[arg-type]
            key=state.pseudonym_key,
            now=utcnow(),
        )
    assert without_time(sent) == without_time(written)

    sent = (await client.get("/v1/riders/me/export", headers=rider.headers)).json()
    assert sent["favourite_places"] == [f"home of {rider.id}"]  # a registered section, kept
    async with sessionmaker() as reading:
        written = await export.rider_export(
            app=app,
            session=reading,
            rider=await reading.get(Rider, rider.id),  # type: ignore[arg-type]
            now=utcnow(),
        )
    assert without_time(sent) == without_time(written)

    schema = (await client.get("/openapi.json")).json()
    for path, model in (
        ("/v1/drivers/me/export", "DriverExportOut"),
        ("/v1/riders/me/export", "RiderExportOut"),
    ):
        answer = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert answer["schema"]["$ref"].endswith(f"/{model}")
