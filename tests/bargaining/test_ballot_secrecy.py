"""Ballot secrecy at rest: a reader of the whole database cannot link a member to a choice, while
members can still change their ballots until the close, the tally is right, and after the close
the key is gone."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import secrecy
from coop.db import utcnow
from coop.keys import service_key
from coop.ratelimit import SECONDS_PER_DAY
from coop.redis_client import Redis, create_redis
from coop.settings import Settings
from server.app import create_app
from server.migrate import alembic_config
from tests.bargaining.conftest import Clock, open_proposal, proposal_body, vote
from tests.builders import Account, make_driver
from tests.conftest import asyncpg_kwargs, recreate_database
from tests.polling import text_with
from tests.servers import service_process
from tests.web.pages import csrf_of, sign_in


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
    assert set(sealed[0]) == {"proposal_id", "voter_tag", "choice", "xmin"}
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


async def _redis_state(redis: Redis) -> dict[str, tuple[Any, int]]:
    """Every key of the service's Redis database: its content and absolute expiry (ms)."""
    state: dict[str, tuple[Any, int]] = {}
    async for raw in redis.scan_iter(count=1000):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        kind_raw = await redis.type(key)
        kind = kind_raw.decode() if isinstance(kind_raw, bytes) else str(kind_raw)
        if kind == "string":
            content: Any = await redis.get(key)
        elif kind == "list":
            content = await redis.lrange(key, 0, -1)
        elif kind == "zset":
            content = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "hash":
            content = await redis.hgetall(key)
        elif kind == "set":
            content = sorted(await redis.smembers(key))
        else:
            content = kind
        state[key] = (content, await redis.pexpiretime(key))
    return state


async def test_no_store_dates_a_ballot_or_keeps_its_moment_under_the_voters_name(
    settings: Settings, session: AsyncSession, tmp_path: Path
) -> None:
    """The tester's join, replayed on the real service (its own process, its own logging): a
    sealed ballot's time, the voter's rate-limit window in Redis (whose key names them) and the
    access log's ballot line matched to the millisecond. Members vote over the API and over the
    pages; then every store a reader of the database, Redis or the logs has is read: no ballot
    carries a time or a transaction id of its own, and nothing the ballot requests left in
    Redis or the log holds their moment under anyone's name."""
    service = service_process(settings, tmp_path / "service.log", COOP_LOG_LEVEL="INFO")
    redis = create_redis(settings.redis_url)
    try:
        with service:
            await service.wait_ready_async()
            async with (
                AsyncClient(base_url=service.base_url) as http,
                AsyncClient(base_url=service.base_url) as pages,
            ):
                admin = {"Authorization": f"Bearer {settings.admin_token}"}
                committee = await make_driver(http, admin, name="Chair", committee=True)
                members = [await make_driver(http, admin, name=f"Voter {i}") for i in range(3)]
                proposal = await open_proposal(http, committee, proposal_body(Clock(utcnow())))
                pid = proposal["id"]
                # Ordinary requests first: each member has a rate-limit window, and the one
                # voting on the pages a page session.
                for member in members:
                    assert (await http.get("/v1/drivers/me", headers=member.headers)).is_success
                await sign_in(pages, members[2].token)
                before = await _redis_state(redis)

                await vote(http, members[0], pid, "yes")
                assert (
                    await http.get(f"/v1/proposals/{pid}/ballot", headers=members[0].headers)
                ).json()["cast_at"] is None
                await vote(http, members[1], pid, "no")
                page = await pages.get(f"/proposals/{pid}")
                voted = await pages.post(
                    f"/proposals/{pid}/ballot", data={"choice": "yes", "csrf": csrf_of(page.text)}
                )
                assert voted.status_code == 303, voted.text
                assert (await pages.get(voted.headers["location"])).status_code == 200

                after = await _redis_state(redis)
                marker = f"/v1/end-of-ballot-test-{uuid.uuid4().hex}"
                await http.get(marker)
            log = await text_with(service.log_path, marker)
    finally:
        await redis.aclose()

    # The database: the sealed ballots keep no time, and one transaction id for all of them.
    columns = await _rows(
        session,
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_name = 'bargaining_sealed_ballot'",
    )
    assert not [c for c in columns if "time" in c["data_type"] or c["data_type"] == "date"]
    sealed = await _rows(
        session,
        "SELECT xmin::text AS xmin FROM bargaining_sealed_ballot WHERE proposal_id = :p",
        p=uuid.UUID(pid),
    )
    assert len(sealed) == 3 and len({row["xmin"] for row in sealed}) == 1

    # Redis: whatever the ballot requests changed holds no moment. The voters' rate-limit
    # windows are as they were; the ballots' own counter is a number per day, expiring at a
    # fixed hour whenever it was set.
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    # What names a voter: their id, or their token's digest (a page session's, which the
    # database's auth_token rows turn into the id).
    names = {str(m.id) for m in members}
    names |= {hashlib.sha256(m.token.encode()).hexdigest() for m in members}
    for key in changed:
        named = {name for name in names if name in key or name in str(after.get(key))}
        if not named:
            continue
        assert key.startswith("coop:limits/ballot/"), key
        count, expires_ms = after[key]
        assert int(count) >= 1 and expires_ms % (SECONDS_PER_DAY * 1000) == 0, key
    assert any(key.startswith("coop:limits/ballot/") for key in changed)

    # The log: no line of a ballot request, nor of the page where one votes.
    lines = [line for line in log.splitlines() if "uvicorn.access" in line or "HTTP/1.1" in line]
    assert any("/v1/drivers/me" in line for line in lines)  # the access log is on
    assert not [line for line in lines if "/ballot" in line or f"/proposals/{pid}" in line]


async def test_ballot_requests_have_a_daily_limit_of_their_own(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    """Kept out of the account's moving window, ballot requests are still limited: per day."""
    app = create_app(
        settings.model_copy(update={"api_limit": "3/minute", "ballot_requests_per_day": 4})
    )
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http,
    ):
        committee = await make_driver(http, admin_headers, name="Chair", committee=True)
        member = await make_driver(http, admin_headers, name="Voter")
        pid = (await open_proposal(http, committee, proposal_body(Clock(utcnow()))))["id"]
        ballot = f"/v1/proposals/{pid}/ballot"
        for choice in ("yes", "no"):
            await vote(http, member, pid, choice)
            assert (await http.get(ballot, headers=member.headers)).json()["choice"] == choice
        refused = await http.post(ballot, json={"choice": "yes"}, headers=member.headers)
        assert refused.status_code == 429, refused.text
        assert refused.json()["type"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= SECONDS_PER_DAY
        # Four ballot requests, none of them in the account's window of 3 a minute.
        for _ in range(3):
            assert (await http.get("/v1/drivers/me", headers=member.headers)).status_code == 200
        assert (await http.get("/v1/drivers/me", headers=member.headers)).status_code == 429
