"""The reputation terms come from the collective agreement in force, through the app's source."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.db import utcnow
from server.app import reputation_policy
from tests.bargaining.strategies import founding_wire
from tests.builders import make_driver, make_rider
from tests.reputation.helpers import FOUNDING, assert_problem, completed_trip, post_rating


async def test_the_founding_agreement_supplies_the_terms(
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    assert await reputation_policy(session, utcnow()) == FOUNDING

    driver = await make_driver(client, admin_headers)
    reputation = (await client.get("/v1/drivers/me/reputation", headers=driver.headers)).json()
    assert reputation["agreement_version"] == 1
    assert reputation["computation"]["min_ratings"] == 20
    assert reputation["computation"]["excluded_tags"] == ["app_problem", "pricing", "traffic"]

    rider = await make_rider(client)
    late = await completed_trip(sessionmaker, rider, driver, ended_ago=timedelta(days=8))
    problem = assert_problem(await post_rating(client, rider, late, 4), 409, "rating_window_closed")
    assert "agreement version 1" in problem["detail"]


async def test_a_ratified_change_of_the_reputation_terms_is_read_from_its_date(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
) -> None:
    opened = utcnow()
    app.state.clock = lambda: opened  # bargaining's routes read the time from here
    committee = await make_driver(client, admin_headers, committee=True)
    members = [await make_driver(client, admin_headers) for _ in range(2)]
    terms = founding_wire()
    terms["reputation"]["min_ratings"] = 5
    terms["reputation"]["support_threshold"] = "3.9"
    terms["reputation"]["excluded_tags"] = ["traffic", "weather"]
    proposal = await client.post(
        "/v1/proposals",
        json={
            "title": "Fewer ratings before a score",
            "rationale": "New members wait too long to see where they stand.",
            "terms": terms,
            "effective_from": None,
            "voting_closes_at": (opened + timedelta(minutes=10)).isoformat(),
        },
        headers=committee.headers,
    )
    assert proposal.status_code == 201, proposal.text
    for member in (committee, *members):
        ballot = await client.post(
            f"/v1/proposals/{proposal.json()['id']}/ballot",
            json={"choice": "yes"},
            headers=member.headers,
        )
        assert ballot.status_code == 200, ballot.text
    closes = opened + timedelta(minutes=10, seconds=1)
    app.state.clock = lambda: closes
    closed = await client.post(
        f"/v1/proposals/{proposal.json()['id']}/close", headers=committee.headers
    )
    assert closed.json()["status"] == "ratified", closed.text

    before = await reputation_policy(session, opened)
    after = await reputation_policy(session, closes + timedelta(seconds=1))

    assert before == FOUNDING
    assert after.agreement_version == 2
    assert after.min_ratings == 5
    assert after.support_threshold == Decimal("3.9")
    assert after.excluded_tags == frozenset({"traffic", "weather"})
    assert (after.window, after.prior_mean) == (FOUNDING.window, FOUNDING.prior_mean)
