"""Proposals and votes through the API: the whole life cycle, its refusals, and secrecy."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import service
from bargaining.models import AgreementVersion, Proposal
from coop.audit import AuditEntry
from drivers.models import Driver, DriverStatus
from tests.bargaining.conftest import Clock, open_proposal, proposal_body, vote
from tests.builders import Account, make_driver, make_rider


async def members(client: AsyncClient, admin_headers: dict[str, str], n: int) -> list[Account]:
    return [await make_driver(client, admin_headers, name=f"Member {i}") for i in range(n)]


async def audit_kinds(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(AuditEntry.kind).order_by(AuditEntry.seq)))


async def test_the_committee_opens_a_vote_with_the_diff_and_impact(
    client: AsyncClient,
    admin_headers: dict[str, str],
    committee: Account,
    clock: Clock,
    session: AsyncSession,
) -> None:
    await members(client, admin_headers, 2)
    body = proposal_body(
        clock,
        changes={
            "fares.standard.per_km": "1.10",
            "commission.percent": "7",
            "commission.cap": None,
        },
    )
    proposal = await open_proposal(client, committee, body)

    assert proposal["status"] == "open"
    assert proposal["base_version"] == 1
    assert proposal["eligible"] == 3  # the committee member and two others, all active
    assert proposal["diff"] == [
        {"path": "commission.cap", "from": "2.50", "to": None},
        {"path": "commission.percent", "from": "8", "to": "7"},
        {"path": "fares.standard.per_km", "from": "1.05", "to": "1.10"},
    ]
    assert proposal["terms"]["fares"]["standard"]["per_km"] == "1.10"
    assert proposal["tally"] is None and proposal["version"] is None
    assert proposal["effective_from"] is None
    # A new installation has no trips: zero is an answer, not an error.
    assert proposal["impact"] == {
        "trips": 0,
        "window_days": 30,
        "currency_before": "CAD",
        "currency_after": "CAD",
        "before": {"driver_earnings": "0.00", "coop_commission": "0.00", "median_fare": None},
        "after": {"driver_earnings": "0.00", "coop_commission": "0.00", "median_fare": None},
    }
    assert await audit_kinds(session) == ["agreement.version", "proposal.opened"]

    again = await client.get(f"/v1/proposals/{proposal['id']}")
    assert again.status_code == 200
    assert again.json() == proposal
    listed = await client.get("/v1/proposals", params={"status": "open"})
    assert [p["id"] for p in listed.json()] == [proposal["id"]]
    assert (await client.get("/v1/proposals", params={"status": "ratified"})).json() == []
    assert (await client.get("/v1/proposals", params={"status": "maybe"})).status_code == 422


async def test_only_the_committee_proposes(
    client: AsyncClient, admin_headers: dict[str, str], clock: Clock, session: AsyncSession
) -> None:
    body = proposal_body(clock)
    driver = await make_driver(client, admin_headers)
    rider = await make_rider(client)
    for headers, status in [
        ({}, 401),
        (rider.headers, 403),
        (driver.headers, 403),
        (admin_headers, 403),
    ]:
        response = await client.post("/v1/proposals", json=body, headers=headers)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert await session.scalar(select(func.count()).select_from(Proposal)) == 0


async def test_an_inactive_committee_member_cannot_open_a_vote(
    client: AsyncClient,
    committee: Account,
    clock: Clock,
    session: AsyncSession,
) -> None:
    await session.execute(
        update(Driver).where(Driver.id == committee.id).values(status=DriverStatus.inactive)
    )
    await session.commit()
    response = await client.post(
        "/v1/proposals", json=proposal_body(clock), headers=committee.headers
    )
    assert response.status_code == 403


async def test_invalid_terms_are_refused_naming_each_field(
    client: AsyncClient, committee: Account, clock: Clock, session: AsyncSession
) -> None:
    body = proposal_body(clock)
    body["terms"]["fares"]["standard"]["per_km"] = "0.50"  # below the drivers' floor
    body["terms"]["commission"]["percent"] = "120"
    body["terms"]["governance"]["quorom_percent"] = "30"
    response = await client.post("/v1/proposals", json=body, headers=committee.headers)
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "validation_error"
    fields = {error["field"]: error["reason"] for error in problem["errors"]}
    assert set(fields) == {"terms.commission.percent", "terms.governance.quorom_percent"}
    # Rules between fields are checked once every field is valid on its own.
    body["terms"]["commission"]["percent"] = "8"
    del body["terms"]["governance"]["quorom_percent"]
    response = await client.post("/v1/proposals", json=body, headers=committee.headers)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "terms.fares.standard.per_km"
    assert "driver_floor.per_km" in error["reason"]
    assert await session.scalar(select(func.count()).select_from(Proposal)) == 0
    assert await audit_kinds(session) == ["agreement.version"]


async def test_bad_dates_and_empty_changes_are_refused(
    client: AsyncClient, committee: Account, clock: Clock, session: AsyncSession
) -> None:
    cases: list[tuple[dict[str, Any], str]] = []
    past = proposal_body(clock, closes_in_s=-1)
    cases.append((past, "voting_closes_at"))
    early = proposal_body(clock, closes_in_s=3600, effective_from=clock.now + timedelta(minutes=5))
    cases.append((early, "effective_from"))
    same = proposal_body(clock, changes={"fares.standard.per_km": "1.05"})
    cases.append((same, "terms"))
    # A vote kept open for years (it held its question hostage): governance.max_voting_days.
    forever = {**proposal_body(clock), "voting_closes_at": "9999-12-31T00:00:00Z"}
    cases.append((forever, "voting_closes_at"))
    cases.append((proposal_body(clock, closes_in_s=30 * 86_400 + 1), "voting_closes_at"))
    for body, field in cases:
        response = await client.post("/v1/proposals", json=body, headers=committee.headers)
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "invalid_proposal"
        assert [e["field"] for e in response.json()["errors"]] == [field]

    naive = proposal_body(clock)
    naive["voting_closes_at"] = "2030-01-01T00:00:00"
    response = await client.post("/v1/proposals", json=naive, headers=committee.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "voting_closes_at"
    missing = proposal_body(clock)
    del missing["title"]
    missing["extra"] = 1
    response = await client.post("/v1/proposals", json=missing, headers=committee.headers)
    assert {e["field"] for e in response.json()["errors"]} == {"title", "extra"}
    assert await session.scalar(select(func.count()).select_from(Proposal)) == 0


async def test_a_vote_ratified_becomes_the_next_version(
    client: AsyncClient,
    admin_headers: dict[str, str],
    committee: Account,
    clock: Clock,
    session: AsyncSession,
) -> None:
    a, b, c = await members(client, admin_headers, 3)
    proposal = await open_proposal(client, committee, proposal_body(clock, closes_in_s=600))
    pid = proposal["id"]
    await vote(client, a, pid, "yes")
    await vote(client, b, pid, "yes")
    await vote(client, c, pid, "yes")
    await vote(client, c, pid, "no")  # a member may change their mind until the close

    early = await client.post(f"/v1/proposals/{pid}/close", headers=committee.headers)
    assert early.status_code == 409
    assert early.json()["type"] == "voting_open"
    not_committee = await client.post(f"/v1/proposals/{pid}/close", headers=a.headers)
    assert not_committee.status_code == 403

    closed_at = clock.advance(seconds=601)
    response = await client.post(f"/v1/proposals/{pid}/close", headers=committee.headers)
    assert response.status_code == 200, response.text
    closed = response.json()
    assert closed["status"] == "ratified"
    assert closed["tally"] == {
        "yes": 2,
        "no": 1,
        "abstain": 0,
        "eligible": 4,
        "turnout_percent": "75.00",
        "reason": "approved",
    }
    assert closed["version"] == 2

    current = (await client.get("/v1/agreements/current")).json()
    assert current["version"] == 2
    assert current["proposal_id"] == pid
    assert current["terms"]["fares"]["standard"]["per_km"] == "1.10"
    assert current["sha256"] == proposal["terms_sha256"]
    assert current["effective_from"] == closed_at.isoformat().replace("+00:00", "Z")
    history = (await client.get("/v1/agreements")).json()
    assert [v["version"] for v in history] == [1, 2]
    diff = (await client.get("/v1/agreements/1/diff/2")).json()
    assert diff == [{"path": "fares.standard.per_km", "from": "1.05", "to": "1.10"}]

    late = await client.post(
        f"/v1/proposals/{pid}/ballot", json={"choice": "no"}, headers=a.headers
    )
    assert late.status_code == 409
    assert late.json()["type"] == "voting_closed"

    # Closing again answers the result and changes nothing.
    again = await client.post(f"/v1/proposals/{pid}/close", headers=committee.headers)
    assert again.status_code == 200 and again.json() == closed
    assert await audit_kinds(session) == [
        "agreement.version",
        "proposal.opened",
        "agreement.version",
        "proposal.closed",
    ]
    entries = (await client.get("/v1/audit")).json()
    assert entries[2]["content"]["version"] == 2
    assert entries[2]["content"]["proposal_id"] == pid
    assert entries[3]["content"]["status"] == "ratified"
    assert entries[3]["content"]["version"] == 2


async def test_a_vote_without_quorum_fails(
    client: AsyncClient,
    admin_headers: dict[str, str],
    committee: Account,
    clock: Clock,
    session: AsyncSession,
) -> None:
    voters = await members(client, admin_headers, 9)  # ten eligible with the committee member
    proposal = await open_proposal(client, committee, proposal_body(clock, closes_in_s=60))
    await vote(client, voters[0], proposal["id"], "yes")
    await vote(client, voters[1], proposal["id"], "yes")
    clock.advance(seconds=60)  # the deadline itself is the close
    closed = (
        await client.post(f"/v1/proposals/{proposal['id']}/close", headers=committee.headers)
    ).json()
    assert closed["status"] == "rejected"
    assert closed["tally"] == {
        "yes": 2,
        "no": 0,
        "abstain": 0,
        "eligible": 10,
        "turnout_percent": "20.00",
        "reason": "quorum_not_met",
    }
    assert closed["version"] is None
    assert (await client.get("/v1/agreements/current")).json()["version"] == 1
    assert await session.scalar(select(func.count()).select_from(AgreementVersion)) == 1


async def test_a_vote_without_a_majority_is_rejected(
    client: AsyncClient,
    admin_headers: dict[str, str],
    committee: Account,
    clock: Clock,
) -> None:
    a, b, c = await members(client, admin_headers, 3)
    proposal = await open_proposal(client, committee, proposal_body(clock, closes_in_s=60))
    await vote(client, a, proposal["id"], "yes")
    await vote(client, b, proposal["id"], "no")
    await vote(client, c, proposal["id"], "abstain")  # counts for the quorum, not the majority
    clock.advance(seconds=61)
    closed = (await client.get(f"/v1/proposals/{proposal['id']}")).json()
    assert closed["status"] == "rejected"
    assert closed["tally"]["reason"] == "not_approved"
    assert closed["tally"]["turnout_percent"] == "75.00"
    assert (await client.get("/v1/agreements/current")).json()["version"] == 1


async def test_a_ratified_version_waits_for_its_effective_date(
    client: AsyncClient,
    admin_headers: dict[str, str],
    committee: Account,
    clock: Clock,
    session: AsyncSession,
) -> None:
    (a,) = await members(client, admin_headers, 1)
    opened_at = clock.now
    effective_from = clock.now + timedelta(days=7)
    proposal = await open_proposal(
        client, committee, proposal_body(clock, closes_in_s=3600, effective_from=effective_from)
    )
    await vote(client, a, proposal["id"], "yes")
    clock.advance(hours=2)
    closed = (await client.get(f"/v1/proposals/{proposal['id']}")).json()
    assert closed["status"] == "ratified" and closed["version"] == 2

    assert (await client.get("/v1/agreements/current")).json()["version"] == 1
    version_2 = (await client.get("/v1/agreements/2")).json()
    assert version_2["effective_from"] == effective_from.isoformat().replace("+00:00", "Z")
    clock.advance(days=7)
    assert (await client.get("/v1/agreements/current")).json()["version"] == 2

    # Pricing asks which version was in force when a trip was requested.
    async def version_at(delta: timedelta) -> int:
        return (await service.in_force(session=session, at=effective_from + delta)).version

    assert await version_at(-timedelta(microseconds=1)) == 1
    assert await version_at(timedelta(0)) == 2
    assert (await service.in_force(session=session, at=opened_at)).version == 1


async def test_the_rules_of_the_version_in_force_at_the_opening_decide(
    client: AsyncClient,
    admin_headers: dict[str, str],
    committee: Account,
    clock: Clock,
) -> None:
    voters = await members(client, admin_headers, 4)  # five eligible
    strict = await open_proposal(
        client,
        committee,
        proposal_body(clock, closes_in_s=60, changes={"governance.quorum_percent": "90"}),
    )
    fares = await open_proposal(client, committee, proposal_body(clock, closes_in_s=120))
    for member in [committee, *voters]:
        await vote(client, member, strict["id"], "yes")
    await vote(client, voters[0], fares["id"], "yes")
    await vote(client, voters[1], fares["id"], "yes")  # 40 % turnout
    clock.advance(seconds=61)
    assert (await client.get(f"/v1/proposals/{strict['id']}")).json()["version"] == 2
    clock.advance(seconds=60)
    # Version 2 (quorum 90 %) is in force at the close, but the vote opened under version 1
    # (quorum 30 %): 40 % is enough.
    closed = (await client.get(f"/v1/proposals/{fares['id']}")).json()
    assert closed["status"] == "ratified"
    assert closed["version"] == 3
    current = (await client.get("/v1/agreements/current")).json()
    assert current["version"] == 3
    # Version 3 is the proposal's complete terms: it restores quorum 30 %, as members saw.
    assert current["terms"]["governance"]["quorum_percent"] == "30"


async def test_who_may_vote(
    client: AsyncClient,
    admin_headers: dict[str, str],
    committee: Account,
    clock: Clock,
    session: AsyncSession,
) -> None:
    member, leaving = await members(client, admin_headers, 2)
    proposal = await open_proposal(client, committee, proposal_body(clock))
    pid = proposal["id"]
    late_joiner = await make_driver(client, admin_headers, name="Newcomer")
    rider = await make_rider(client)
    await session.execute(
        update(Driver).where(Driver.id == leaving.id).values(status=DriverStatus.inactive)
    )
    await session.commit()

    async def ballot(headers: dict[str, str], choice: object = "yes", target: str = pid) -> Any:
        return await client.post(
            f"/v1/proposals/{target}/ballot", json={"choice": choice}, headers=headers
        )

    assert (await ballot({})).status_code == 401
    assert (await ballot(rider.headers)).status_code == 403
    assert (await ballot(admin_headers)).status_code == 403
    inactive = await ballot(leaving.headers)
    assert inactive.status_code == 403
    not_on_roll = await ballot(late_joiner.headers)
    assert not_on_roll.status_code == 403
    assert not_on_roll.json()["type"] == "not_eligible"
    assert (await ballot(member.headers, choice="maybe")).status_code == 422
    assert (await ballot(member.headers, target=str(uuid.uuid4()))).status_code == 404
    assert (await ballot(member.headers)).json()["choice"] == "yes"
    own = await client.get(f"/v1/proposals/{pid}/ballot", headers=late_joiner.headers)
    assert own.json() == {
        "proposal_id": pid,
        "eligible": False,
        "choice": None,
        "cast_at": None,
        "sealed": False,
    }


async def test_ballots_are_secret(
    client: AsyncClient,
    admin_headers: dict[str, str],
    committee: Account,
    clock: Clock,
) -> None:
    a, b = await members(client, admin_headers, 2)
    proposal = await open_proposal(client, committee, proposal_body(clock, closes_in_s=60))
    pid = proposal["id"]
    await vote(client, a, pid, "yes")
    await vote(client, b, pid, "no")

    # While the vote runs, nobody sees a count.
    assert (await client.get(f"/v1/proposals/{pid}")).json()["tally"] is None
    # A member reads their own ballot, and only their own.
    mine = (await client.get(f"/v1/proposals/{pid}/ballot", headers=a.headers)).json()
    assert (mine["eligible"], mine["choice"]) == (True, "yes")
    theirs = (await client.get(f"/v1/proposals/{pid}/ballot", headers=b.headers)).json()
    assert theirs["choice"] == "no"
    chair = (await client.get(f"/v1/proposals/{pid}/ballot", headers=committee.headers)).json()
    assert (chair["eligible"], chair["choice"]) == (True, None)
    rider = await make_rider(client)
    assert (
        await client.get(f"/v1/proposals/{pid}/ballot", headers=rider.headers)
    ).status_code == 403

    clock.advance(seconds=60)
    public = [
        await client.get(f"/v1/proposals/{pid}"),
        await client.get("/v1/proposals"),
        await client.get("/v1/audit"),
        await client.get("/v1/agreements"),
    ]
    for response in public:
        assert response.status_code == 200
        for account in (a, b, committee):
            assert str(account.id) not in response.text
    # No route lists ballots: the only ballot routes are the caller's own.
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert [p for p in paths if "ballot" in p] == ["/v1/proposals/{proposal_id}/ballot"]
    assert set(paths["/v1/proposals/{proposal_id}/ballot"]) == {"get", "post"}


async def test_unknown_proposals_and_versions(client: AsyncClient, committee: Account) -> None:
    missing = uuid.uuid4()
    for method, path in [
        ("GET", f"/v1/proposals/{missing}"),
        ("POST", f"/v1/proposals/{missing}/close"),
        ("GET", f"/v1/agreements/{99}"),
        ("GET", "/v1/agreements/1/diff/99"),
    ]:
        response = await client.request(method, path, headers=committee.headers)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    own = await client.get(f"/v1/proposals/{missing}/ballot", headers=committee.headers)
    assert own.status_code == 404
    assert (await client.get("/v1/proposals/not-an-id")).status_code == 422
    assert (await client.get("/v1/agreements/0")).status_code == 422


async def test_a_ballot_after_the_deadline_closes_the_vote_and_is_refused(
    client: AsyncClient,
    admin_headers: dict[str, str],
    committee: Account,
    clock: Clock,
    session: AsyncSession,
) -> None:
    (member,) = await members(client, admin_headers, 1)
    proposal = await open_proposal(client, committee, proposal_body(clock, closes_in_s=60))
    await vote(client, committee, proposal["id"], "yes")
    clock.advance(seconds=60)
    late = await client.post(
        f"/v1/proposals/{proposal['id']}/ballot", json={"choice": "no"}, headers=member.headers
    )
    assert late.status_code == 409
    assert late.json()["type"] == "voting_closed"
    # Nobody read the proposal, yet it is closed, counted without the late ballot.
    stored = await session.get(Proposal, uuid.UUID(proposal["id"]))
    assert stored is not None
    assert (stored.status.value, stored.yes, stored.no) == ("ratified", 1, 0)
    own = await client.get(f"/v1/proposals/{proposal['id']}/ballot", headers=member.headers)
    assert own.json()["choice"] is None
