"""Ballot secrecy at rest: a reader of the whole database cannot link a member to a choice, while
members can still change their ballots until the close, the tally is right, and after the close
the key is gone."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from typing import Any

import asyncpg
from alembic import command
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import secrecy
from coop.keys import service_key
from coop.settings import Settings
from server.migrate import alembic_config
from tests.bargaining.conftest import Clock, open_proposal, proposal_body, vote
from tests.builders import Account, make_driver
from tests.conftest import asyncpg_kwargs, recreate_database


async def _rows(session: AsyncSession, query: str, **params: object) -> list[dict[str, Any]]:
    result = await session.execute(text(query), params)
    return [dict(row._mapping) for row in result]


def _unkeyed_guesses(member: uuid.UUID, salt: bytes | None, proposal: uuid.UUID) -> set[bytes]:
    """What a database reader could compute from what the database holds, without the key."""
    raw = [member.bytes, str(member).encode(), member.hex.encode()]
    guesses = {hashlib.sha256(value).digest() for value in raw}
    for key in filter(None, [salt, proposal.bytes]):
        for value in raw:
            guesses.add(hmac.new(key, value, hashlib.sha256).digest())
        guesses.add(secrecy.voter_tag(key, member))
        guesses.add(secrecy.voter_tag(hashlib.sha256(key).digest(), member))
    if salt is not None:
        for master in (b"", salt, proposal.bytes):
            guesses.add(secrecy.voter_tag(secrecy.ballot_key(master, proposal, salt), member))
    return guesses


async def test_a_database_reader_cannot_link_a_member_to_a_choice(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    committee: Account,
    clock: Clock,
    session: AsyncSession,
) -> None:
    members = [await make_driver(client, admin_headers, name=f"Member {i}") for i in range(4)]
    proposal = await open_proposal(client, committee, proposal_body(clock, closes_in_s=60))
    pid = uuid.UUID(proposal["id"])
    await vote(client, members[0], str(pid), "yes")
    await vote(client, members[1], str(pid), "no")
    await vote(client, members[2], str(pid), "no")
    await vote(client, members[2], str(pid), "yes")  # changed their mind: still one ballot
    await vote(client, committee, str(pid), "abstain")
    # members[3] does not vote.

    # Each member still reads (and so could change) their own ballot.
    own = [
        (await client.get(f"/v1/proposals/{pid}/ballot", headers=m.headers)).json() for m in members
    ]
    assert [(b["choice"], b["sealed"]) for b in own] == [
        ("yes", False),
        ("no", False),
        ("yes", False),
        (None, False),
    ]

    # What a reader of the database sees. The roll: who may vote, no choice, nothing written
    # since the vote opened (every row still carries the opening's transaction id).
    roll = await _rows(
        session,
        "SELECT *, xmin::text AS xmin, xmax::text AS xmax FROM bargaining_ballot"
        " WHERE proposal_id = :p",
        p=pid,
    )
    assert set(roll[0]) == {"proposal_id", "driver_id", "xmin", "xmax"}
    assert len(roll) == 5 and len({row["xmin"] for row in roll}) == 1
    assert {row["xmax"] for row in roll} == {"0"}
    sealed = await _rows(
        session,
        "SELECT *, xmin::text AS xmin FROM bargaining_sealed_ballot WHERE proposal_id = :p",
        p=pid,
    )
    assert set(sealed[0]) == {"proposal_id", "voter_tag", "choice", "cast_at", "xmin"}
    assert sorted(str(row["choice"]) for row in sealed) == ["abstain", "no", "yes", "yes"]
    # Neither the voters' rows nor their accounts were touched by voting (no row lock either):
    # no transaction id joins a member's row to a sealed ballot.
    ballot_xids = {row["xmin"] for row in sealed}
    member_ids = [m.id for m in [*members, committee]]
    for table, column in (("driver", "id"), ("auth_token", "subject_id")):
        touched = await _rows(
            session,
            f"SELECT xmin::text AS xmin, xmax::text AS xmax FROM {table}"
            f" WHERE {column} = ANY(:ids)",
            ids=member_ids,
        )
        assert not {row["xmin"] for row in touched} & ballot_xids, table
        assert not {row["xmax"] for row in touched} & ballot_xids, table
    [key_row] = await _rows(
        session, "SELECT salt FROM bargaining_ballot_key WHERE proposal_id = :p", p=pid
    )
    salt = bytes(key_row["salt"])
    tags = {bytes(row["voter_tag"]) for row in sealed}
    for member in member_ids:
        assert not _unkeyed_guesses(member, salt, pid) & tags
    everything = " ".join(str(row) for row in sealed)
    for member in member_ids:
        assert str(member) not in everything and member.hex not in everything
    # The service, with its master key, does link them (which is how members change ballots).
    key = secrecy.ballot_key(app.state.ballot_master_key, pid, salt)
    by_tag = {bytes(row["voter_tag"]): str(row["choice"]) for row in sealed}
    assert by_tag[secrecy.voter_tag(key, members[2].id)] == "yes"

    # The close counts the sealed ballots and destroys the key in the same transaction.
    clock.advance(seconds=60)
    closed = (await client.get(f"/v1/proposals/{pid}")).json()
    tally = closed["tally"]
    assert (tally["yes"], tally["no"], tally["abstain"], tally["eligible"]) == (2, 1, 1, 5)
    assert (
        await _rows(session, "SELECT * FROM bargaining_ballot_key WHERE proposal_id = :p", p=pid)
        == []
    )
    # Anyone with the database can recount: the sealed choices are still there.
    recount = await _rows(
        session,
        "SELECT choice::text AS choice, count(*) AS n FROM bargaining_sealed_ballot"
        " WHERE proposal_id = :p GROUP BY choice",
        p=pid,
    )
    assert {row["choice"]: row["n"] for row in recount} == {"yes": 2, "no": 1, "abstain": 1}
    # After the close, not even the member's own ballot can be found: it is sealed.
    after = (await client.get(f"/v1/proposals/{pid}/ballot", headers=members[0].headers)).json()
    assert (after["eligible"], after["choice"], after["cast_at"], after["sealed"]) == (
        True,
        None,
        None,
        True,
    )
    export = (await client.get("/v1/drivers/me/export", headers=members[0].headers)).json()
    assert [(b["choice"], b["sealed"]) for b in export["ballots"]] == [(None, True)]
    late = await client.post(
        f"/v1/proposals/{pid}/ballot", json={"choice": "no"}, headers=members[3].headers
    )
    assert late.status_code == 409 and late.json()["type"] == "voting_closed"


async def test_the_migration_seals_the_ballots_already_cast(base_settings: Settings) -> None:
    """A database with ballots stored the old way (member and choice on one row): the migration
    moves every choice under a voter tag and drops the link; an open vote stays changeable (the
    service finds each member's ballot with its key), a closed one is unlinkable at once, and the
    counts do not change."""
    url = make_url(base_settings.database_url)
    url = url.set(database=f"{url.database}_sealing")
    await recreate_database(url)
    database_url = url.render_as_string(hide_password=False)
    config = alembic_config(database_url)
    await asyncio.to_thread(command.upgrade, config, "bargaining")
    members = [uuid.uuid4() for _ in range(3)]
    open_id, closed_id = uuid.uuid4(), uuid.uuid4()
    connection = await asyncpg.connect(**asyncpg_kwargs(url))
    try:
        await connection.execute(
            "INSERT INTO agreement_version (version, effective_from, terms, sha256, created_at)"
            " VALUES (1, now(), '{}', repeat('0', 64), now())"
        )
        for i, member in enumerate(members):
            await connection.execute(
                "INSERT INTO driver (id, name, member_number, status, committee, reviewer,"
                " created_at) VALUES ($1, $2, $3, 'active', false, false, now())",
                member,
                f"Member {i}",
                f"M-{i}",
            )
        for proposal, status in ((open_id, "open"), (closed_id, "rejected")):
            await connection.execute(
                "INSERT INTO bargaining_proposal (id, title, rationale, terms, terms_sha256,"
                " base_version, voting_closes_at, status, opened_at, eligible, impact)"
                " VALUES ($1, 't', 'r', '{}', repeat('0', 64), 1, now() + interval '1 day',"
                " $2, now(), 3, '{}')",
                proposal,
                status,
            )
        choices: dict[uuid.UUID, list[str | None]] = {
            open_id: ["yes", "no", None],
            closed_id: ["no", "no", "abstain"],
        }
        for proposal, picked in choices.items():
            for member, choice in zip(members, picked, strict=True):
                await connection.execute(
                    "INSERT INTO bargaining_ballot (proposal_id, driver_id, choice, cast_at)"
                    " VALUES ($1, $2, $3, CASE WHEN $3::ballot_choice IS NULL THEN NULL"
                    " ELSE now() END)",
                    proposal,
                    member,
                    choice,
                )
        await asyncio.to_thread(command.upgrade, config, "heads")
        roll = await connection.fetch("SELECT * FROM bargaining_ballot")
        assert len(roll) == 6 and set(roll[0].keys()) == {"proposal_id", "driver_id"}
        sealed = await connection.fetch("SELECT * FROM bargaining_sealed_ballot")
        by_proposal = {
            proposal: sorted(str(row["choice"]) for row in sealed if row["proposal_id"] == proposal)
            for proposal in (open_id, closed_id)
        }
        assert by_proposal == {open_id: ["no", "yes"], closed_id: ["abstain", "no", "no"]}
        keys = await connection.fetch("SELECT proposal_id, salt FROM bargaining_ballot_key")
        assert [row["proposal_id"] for row in keys] == [open_id]
        # The open vote: the service's key finds each member's own ballot, so it can change.
        master = service_key(
            name="ballot",
            configured=base_settings.ballot_key,
            env=base_settings.env,
            data_dir=base_settings.data_dir,
        )
        key = secrecy.ballot_key(master, open_id, bytes(keys[0]["salt"]))
        tags = {bytes(row["voter_tag"]): str(row["choice"]) for row in sealed}
        assert [tags.get(secrecy.voter_tag(key, m)) for m in members] == ["yes", "no", None]
    finally:
        await connection.close()
        admin = await asyncpg.connect(**asyncpg_kwargs(url.set(database="postgres")))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        finally:
            await admin.close()
