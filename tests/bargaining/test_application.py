"""The checks of who may act on a vote live in `bargaining.application`, which the API's routes
and the pages both call: a member outside the committee is refused by the function itself, so
no adapter can leave the check out by wiring its own dependencies."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import application
from bargaining.dependencies import BargainingState
from bargaining.schemas import ProposalCreate
from coop.errors import Forbidden
from coop.state import state_of
from drivers.models import Driver
from tests.bargaining.conftest import Clock, open_proposal, proposal_body
from tests.builders import Account, make_driver
from tests.web.pages import csrf_of, sign_in


async def _driver(session: AsyncSession, account: Account) -> Driver:
    driver = await session.get(Driver, account.id)
    assert driver is not None
    return driver


async def test_the_application_refuses_a_member_outside_the_committee(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    committee: Account,
    clock: Clock,
    session: AsyncSession,
) -> None:
    member = await make_driver(client, admin_headers, name="Not On The Committee")
    proposal = await open_proposal(client, committee, proposal_body(clock, closes_in_s=60))
    clock.advance(seconds=120)
    outsider = await _driver(session, member)
    sources = state_of(app, BargainingState)

    with pytest.raises(Forbidden):
        await application.close_proposal(
            driver=outsider, proposal_id=uuid.UUID(proposal["id"]), session=session, now=clock.now
        )
    with pytest.raises(Forbidden):
        await application.open_proposal(
            driver=outsider,
            body=ProposalCreate.model_validate(proposal_body(clock)),
            session=session,
            now=clock.now,
            trips_source=sources.completed_trips_source,
            patronage_source=sources.patronage_source,
        )
    with pytest.raises(Forbidden):
        await application.withdraw_proposal(
            driver=outsider,
            proposal_id=uuid.UUID(proposal["id"]),
            reason="not mine to withdraw",
            session=session,
            now=clock.now,
        )


async def test_the_page_and_the_route_refuse_the_same_close(
    client: AsyncClient, admin_headers: dict[str, str], committee: Account, clock: Clock
) -> None:
    """The attack: a member outside the committee closes a vote through the page, whose own
    handler once wired the route's dependencies by hand. Both paths answer 403; the vote stays
    open until a committee member closes it."""
    member = await make_driver(client, admin_headers, name="Not On The Committee")
    proposal = await open_proposal(client, committee, proposal_body(clock, closes_in_s=60))
    clock.advance(seconds=120)
    path = f"/proposals/{proposal['id']}"

    over_api = await client.post(f"/v1{path}/close", headers=member.headers)
    assert over_api.status_code == 403, over_api.text
    assert over_api.json()["type"] == "forbidden"
    await sign_in(client, member.token)
    page = await client.get(path)
    over_page = await client.post(f"{path}/close", data={"csrf": csrf_of(page.text)})
    assert over_page.status_code == 403

    closed = await client.post(f"/v1{path}/close", headers=committee.headers)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] in {"ratified", "rejected"}
