"""Anyone subject to an automated decision can ask a person to review it; an operator answers
within the agreement's review_due_days; the request names only a trip or offer of the caller's."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta

from fastapi import FastAPI
from httpx import AsyncClient

from coop.state import CoreState, state_of
from tests.builders import make_driver, make_rider, offer_to, place_driver, request_trip

STATEMENT = "Le trajet a été facturé 40 $ alors que le devis disait 14 $."


async def test_a_rider_asks_about_a_fare_and_an_operator_answers_once(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    trip = await request_trip(client, rider)
    now = state_of(app, CoreState).clock()
    asked = await client.post(
        "/v1/decision-reviews",
        json={"decision": "fare", "trip_id": trip["id"], "statement": f"  {STATEMENT} "},
        headers=rider.headers,
    )
    assert asked.status_code == 201, asked.text
    review = asked.json()
    assert (review["decision"], review["trip_id"], review["statement"]) == (
        "fare",
        trip["id"],
        STATEMENT,
    )
    due = datetime.fromisoformat(review["due_at"]) - datetime.fromisoformat(review["requested_at"])
    assert due == timedelta(days=14)  # the founding agreement's reputation.review_due_days
    assert review["requested_at"] >= now.isoformat()[:19]
    assert (review["outcome"], review["overdue"]) == (None, False)

    queue = await client.get("/v1/decision-reviews", headers=admin_headers)
    assert [entry["id"] for entry in queue.json()] == [review["id"]]
    register = (await client.get("/v1/transparency/automated-decisions")).json()
    assert (register["reviews_open"], register["reviews_overdue"]) == (1, 0)
    # Past its due date, it is counted overdue, publicly (a count, never whose).
    late = datetime.fromisoformat(review["due_at"]) + timedelta(seconds=1)
    state_of(app, CoreState).clock = lambda: late
    register = (await client.get("/v1/transparency/automated-decisions")).json()
    assert register["reviews_overdue"] == 1
    page = (await client.get("/transparency", headers={"Accept-Language": "fr-CA"})).text
    assert "Révisions de décisions automatisées en attente" in page and 'class="alert">1<' in page
    state_of(app, CoreState).clock = lambda: now
    answers = await asyncio.gather(
        *(
            client.post(
                f"/v1/decision-reviews/{review['id']}/answer",
                json={"outcome": outcome, "answer": "Le plafond du devis s'applique : 16,33 $."},
                headers=admin_headers,
            )
            for outcome in ("changed", "upheld")
        )
    )
    assert sorted(answer.status_code for answer in answers) == [200, 409]
    conflict = next(answer for answer in answers if answer.status_code == 409)
    assert conflict.json()["type"].endswith("review_already_answered")
    mine = await client.get("/v1/decision-reviews/mine", headers=rider.headers)
    [answered] = mine.json()
    assert answered["outcome"] in {"changed", "upheld"} and answered["answered_at"] is not None
    assert (await client.get("/v1/decision-reviews", headers=admin_headers)).json() == []
    everything = await client.get("/v1/decision-reviews?status=all", headers=admin_headers)
    assert len(everything.json()) == 1

    published = json.dumps((await client.get("/v1/audit")).json())
    assert "decision_review_requested" in published and "decision_review_answered" in published
    for private in (STATEMENT, str(rider.id), trip["id"], "16,33"):
        assert private not in published
    exported = await client.get("/v1/riders/me/export", headers=rider.headers)
    assert exported.json()["decision_reviews"][0]["statement"] == STATEMENT


async def test_a_review_is_asked_only_about_ones_own_trip_or_offer(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider, stranger = await make_rider(client), await make_rider(client, "Sam Stranger")
    driver, other = (
        await make_driver(client, admin_headers),
        await make_driver(client, admin_headers, name="Omar Other"),
    )
    trip = await request_trip(client, rider)
    await place_driver(app, driver.id, {"lat": 45.5019, "lon": -73.5674})
    offer_id = await offer_to(app, driver)

    def ask(**body: object) -> dict[str, object]:
        return {"decision": "dispatch_offer", "statement": "Why this offer?", **body}

    cases = [
        (stranger.headers, ask(trip_id=trip["id"]), 403, "not_your_trip"),
        (rider.headers, ask(trip_id=str(uuid.uuid4())), 404, None),
        (other.headers, ask(offer_id=str(offer_id)), 403, "not_your_offer"),
        (rider.headers, ask(offer_id=str(offer_id)), 403, "not_your_offer"),
        (driver.headers, ask(offer_id=str(uuid.uuid4())), 404, "offer_not_found"),
        (rider.headers, ask(decision="horoscope"), 422, "unknown_decision"),
        (rider.headers, ask(decision="status_decisions"), 422, "not_automated"),
        (rider.headers, ask(statement=""), 422, "validation_error"),
        (rider.headers, ask(statement="x" * 2001), 422, "validation_error"),
        (rider.headers, ask(extra=True), 422, "validation_error"),
        ({}, ask(), 401, None),
        (admin_headers, ask(), 403, None),
    ]
    for headers, body, status, problem in cases:
        response = await client.post("/v1/decision-reviews", json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        if problem is not None:
            assert response.json()["type"].endswith(problem), (body, response.text)
    mine = await client.post(
        "/v1/decision-reviews", json=ask(offer_id=str(offer_id)), headers=driver.headers
    )
    assert mine.status_code == 201, mine.text
    assert (await client.get("/v1/decision-reviews", headers=admin_headers)).json()[0][
        "offer_id"
    ] == str(offer_id)
    for caller in (rider.headers, driver.headers):
        queue = await client.get("/v1/decision-reviews", headers=caller)
        assert queue.status_code == 403
    unknown = await client.post(
        f"/v1/decision-reviews/{uuid.uuid4()}/answer",
        json={"outcome": "upheld", "answer": "ok"},
        headers=admin_headers,
    )
    assert unknown.status_code == 404


async def test_an_account_has_a_few_open_requests_at_most(client: AsyncClient) -> None:
    rider = await make_rider(client)
    body = {"decision": "rate_limits", "statement": "I was refused for an hour."}
    answers = [
        await client.post("/v1/decision-reviews", json=body, headers=rider.headers)
        for _ in range(6)
    ]
    assert [answer.status_code for answer in answers] == [201] * 5 + [409]
    assert answers[-1].json()["type"].endswith("too_many_open_reviews")
