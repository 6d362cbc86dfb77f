"""The committee withdraws an open vote, with a reason on record: nothing is counted, no ballot
can be read or added, and the audit log has it."""

from __future__ import annotations

import hashlib

from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.models import BallotKey, SealedBallot
from coop.audit import AuditEntry
from tests.bargaining.conftest import Clock, open_proposal, proposal_body, vote
from tests.builders import make_driver, make_rider

REASON = "The fuel figures in the rationale were last year's; we will propose again."


async def test_the_committee_withdraws_an_open_vote_with_an_audited_reason(
    client: AsyncClient, admin_headers: dict[str, str], clock: Clock, session: AsyncSession
) -> None:
    proposer = await make_driver(client, admin_headers, name="Proposer", committee=True)
    chair = await make_driver(client, admin_headers, name="Chair", committee=True)
    member = await make_driver(client, admin_headers, name="Member")
    rider = await make_rider(client)
    proposal = await open_proposal(client, proposer, proposal_body(clock, closes_in_s=7 * 86_400))
    await vote(client, member, proposal["id"], "yes")
    path = f"/v1/proposals/{proposal['id']}/withdraw"

    for headers, status in ((member.headers, 403), (rider.headers, 403), ({}, 401)):
        refused = await client.post(path, json={"reason": REASON}, headers=headers)
        assert refused.status_code == status, refused.text
    empty = await client.post(path, json={"reason": "  "}, headers=chair.headers)
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "reason"

    withdrawn = await client.post(path, json={"reason": REASON}, headers=chair.headers)
    assert withdrawn.status_code == 200, withdrawn.text
    body = withdrawn.json()
    assert (body["status"], body["withdrawn_reason"], body["tally"]) == ("withdrawn", REASON, None)
    assert body["closed_at"] is not None
    # Nothing of the vote is left to count, and nobody can vote on it any more.
    for table in (SealedBallot, BallotKey):
        count = await session.scalar(select(func.count()).select_from(table))
        assert count == 0, table
    late = await client.post(
        f"/v1/proposals/{proposal['id']}/ballot", json={"choice": "no"}, headers=member.headers
    )
    assert (late.status_code, late.json()["type"]) == (409, "voting_closed")
    again = await client.post(path, json={"reason": REASON}, headers=chair.headers)
    assert (again.status_code, again.json()["type"]) == (409, "voting_closed")
    listed = await client.get("/v1/proposals?status=withdrawn")
    assert [p["id"] for p in listed.json()] == [proposal["id"]]
    # Its deadline passing changes nothing.
    clock.advance(days=8)
    read = (await client.get(f"/v1/proposals/{proposal['id']}")).json()
    assert (read["status"], read["tally"]) == ("withdrawn", None)
    entry = await session.scalar(select(AuditEntry).where(AuditEntry.kind == "proposal.withdrawn"))
    assert entry is not None
    assert str(chair.id) not in str(entry.content)
    assert entry.content["reason_sha256"] == hashlib.sha256(REASON.encode()).hexdigest()
    assert REASON not in str(entry.content)


async def test_a_closed_vote_cannot_be_withdrawn(
    client: AsyncClient, admin_headers: dict[str, str], clock: Clock
) -> None:
    chair = await make_driver(client, admin_headers, name="Chair", committee=True)
    proposal = await open_proposal(client, chair, proposal_body(clock, closes_in_s=60))
    clock.advance(seconds=61)
    refused = await client.post(
        f"/v1/proposals/{proposal['id']}/withdraw", json={"reason": REASON}, headers=chair.headers
    )
    assert (refused.status_code, refused.json()["type"]) == (409, "voting_closed")
    read = (await client.get(f"/v1/proposals/{proposal['id']}")).json()
    assert read["status"] == "rejected" and read["tally"]["reason"] == "quorum_not_met"
    unknown = await client.post(
        "/v1/proposals/00000000-0000-0000-0000-000000000000/withdraw",
        json={"reason": REASON},
        headers=chair.headers,
    )
    assert (unknown.status_code, unknown.json()["type"]) == (404, "proposal_not_found")
