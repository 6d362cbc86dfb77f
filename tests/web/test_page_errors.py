"""A signed-in member whose form or link is refused gets the documented error page (404, 409),
never a 500: the refusal rolls the transaction back and the page must still render."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.bargaining.conftest import Clock, open_proposal, proposal_body
from tests.builders import make_driver, make_rider
from tests.reputation.helpers import FOUNDING, install_policy, rated_trip
from tests.web.pages import csrf_of, sign_in


async def test_an_unknown_proposal_is_the_404_page_for_a_signed_in_member(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    member = await make_driver(client, admin_headers, name="Ines Member", committee=True)
    await sign_in(client, member.token)
    page = await client.get(f"/proposals/{uuid.uuid4()}")
    assert page.status_code == 404, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "Ines Member" in page.text  # the header still names who is signed in


async def test_a_ballot_after_the_close_is_the_409_page(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    clock = Clock(app.state.clock())
    app.state.clock = clock
    committee = await make_driver(client, admin_headers, name="Chair", committee=True)
    proposal = await open_proposal(client, committee, proposal_body(clock, closes_in_s=60))
    await sign_in(client, committee.token)
    csrf = csrf_of((await client.get(f"/proposals/{proposal['id']}")).text)
    clock.advance(seconds=61)
    page = await client.post(
        f"/proposals/{proposal['id']}/ballot", data={"choice": "yes", "csrf": csrf}
    )
    assert page.status_code == 409, page.text
    assert page.headers["content-type"].startswith("text/html")


async def test_deciding_an_appeal_another_reviewer_decided_is_the_409_page(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    install_policy(app, FOUNDING)
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers, name="Dana Driver")
    first = await make_driver(client, admin_headers, name="Rev One", reviewer=True)
    second = await make_driver(client, admin_headers, name="Rev Two", reviewer=True)
    rating = await rated_trip(client, sessionmaker, rider, driver, 2, comment="Slow")
    appeal = await client.post(
        f"/v1/ratings/{rating['id']}/appeal",
        json={"statement": "The street was closed; I followed the detour."},
        headers=driver.headers,
    )
    assert appeal.status_code == 201, appeal.text
    appeal_id = appeal.json()["id"]
    await sign_in(client, second.token)
    csrf = csrf_of((await client.get("/review")).text)
    decided = await client.post(
        f"/v1/appeals/{appeal_id}/decision",
        json={"outcome": "rating_stands", "reason": "The detour was not signed."},
        headers=first.headers,
    )
    assert decided.status_code == 200, decided.text
    page = await client.post(
        f"/review/{appeal_id}",
        data={"outcome": "rating_removed", "reason": "The detour was signed.", "csrf": csrf},
    )
    assert page.status_code == 409, page.text
    assert page.headers["content-type"].startswith("text/html")
