"""A vote opening is pushed to the members on its roll who want `vote` pushes."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from coop.db import utcnow
from tests.bargaining.conftest import Clock, proposal_body
from tests.builders import make_driver
from tests.push.push_service import PushService


async def test_the_members_on_the_roll_are_pushed_that_a_vote_opened(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], pushes: PushService
) -> None:
    chair = await make_driver(client, admin_headers, name="Chair", committee=True)
    member = await make_driver(client, admin_headers, name="Member")
    quiet = await make_driver(client, admin_headers, name="Quiet Member")
    phones = {}
    for account in (member, quiet):
        phones[account.id] = pushes.subscribe()
        registered = await client.post(
            "/v1/devices", json=phones[account.id].device(), headers=account.headers
        )
        assert registered.status_code == 201
    await client.put("/v1/push/preferences", json={"kinds": ["offer"]}, headers=quiet.headers)
    body = proposal_body(Clock(utcnow()), closes_in_s=7200)
    opened = await client.post("/v1/proposals", json=body, headers=chair.headers)
    assert opened.status_code == 201, opened.text
    pushed = await phones[member.id].next(timeout_s=3.0)
    assert pushed.payload["kind"] == "vote"
    assert pushed.payload["proposal_id"] == opened.json()["id"]
    assert 7000 < pushed.ttl_s <= 7200 and pushed.urgency == "normal"
    await app.state.push.idle()
    assert phones[quiet.id].received == []  # chose not to be pushed votes
    assert pushes.refused == []
