"""The audit log: a hash chain in the caller's transaction that never forks and shows tampering."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop import audit
from coop.audit import GENESIS_HASH, AuditEntry
from coop.settings import Settings

FORGED_DIGEST = hashlib.sha256(b'{"i":9,"ok":true}').hexdigest()


async def _append(session: AsyncSession, n: int, kind: str = "test.event") -> list[AuditEntry]:
    entries = []
    for i in range(n):
        entries.append(
            await audit.append(
                session=session, kind=kind, subject=f"thing:{i}", content={"i": i, "ok": True}
            )
        )
    await session.commit()
    return entries


async def _tamper(session: AsyncSession, sql: str) -> None:
    """Changes rows as a database administrator could, around the append-only trigger."""
    await session.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only"))
    await session.execute(text(sql))
    await session.execute(text("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only"))
    await session.commit()


async def test_entries_chain_from_the_genesis_hash(session: AsyncSession) -> None:
    first, second = await _append(session, 2)
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    result = await audit.verify(session=session)
    assert result.ok and result.entries == 2 and result.head_hash == second.hash


async def test_an_empty_log_verifies(session: AsyncSession) -> None:
    result = await audit.verify(session=session)
    assert (result.ok, result.entries, result.head_hash) == (True, 0, GENESIS_HASH)


async def test_an_entry_is_written_only_if_the_callers_transaction_commits(
    session: AsyncSession,
) -> None:
    await audit.append(session=session, kind="test.event", subject="x:1", content={"a": 1})
    await session.rollback()
    assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 0
    (entry,) = await _append(session, 1)
    assert entry.seq == 1  # the rolled-back entry left no gap


async def test_content_is_plain_json_with_ids_decimals_and_times_as_strings(
    session: AsyncSession,
) -> None:
    some_id = uuid.uuid4()
    entry = await audit.append(
        session=session,
        kind="test.event",
        subject="x:1",
        content={"id": some_id, "amount": Decimal("2.50"), "nested": [{"b": None}]},
    )
    await session.commit()
    assert entry.content == {"id": str(some_id), "amount": "2.50", "nested": [{"b": None}]}
    with pytest.raises(TypeError, match="floats are not allowed"):
        await audit.append(session=session, kind="k", subject="s", content={"x": 0.1})
    with pytest.raises(ValueError, match="kind"):
        await audit.append(session=session, kind="", subject="s", content={})
    await session.rollback()
    assert (await audit.verify(session=session)).ok


async def test_concurrent_appends_never_fork_the_chain(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async def one(i: int) -> None:
        async with sessionmaker() as own:
            await audit.append(session=own, kind="test.race", subject=f"r:{i}", content={"i": i})
            await asyncio.sleep(0)  # hold the transaction open across a switch
            await own.commit()

    await asyncio.gather(*(one(i) for i in range(20)))
    async with sessionmaker() as session:
        rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
        assert [row.seq for row in rows] == list(range(1, 21))
        assert sorted(row.content["i"] for row in rows) == list(range(20))
        assert len({row.prev_hash for row in rows}) == 20
        assert (await audit.verify(session=session)).ok


async def test_the_table_refuses_updates_and_deletes(session: AsyncSession) -> None:
    await _append(session, 1)
    for statement in (
        "UPDATE audit_entry SET kind = 'other'",
        "DELETE FROM audit_entry",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text(statement))
        await session.rollback()
    assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 1


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        (
            """UPDATE audit_entry SET content = '{"i": 9, "ok": true}' WHERE seq = 3""",
            "content does not match its digest",
        ),
        (
            # A careful forger recomputes the digest too: the entry's hash no longer fits.
            'UPDATE audit_entry SET content = \'{"i": 9, "ok": true}\', '
            f"digest = '{FORGED_DIGEST}' WHERE seq = 3",
            "hash does not match",
        ),
        ("UPDATE audit_entry SET subject = 'thing:99' WHERE seq = 3", "hash does not match"),
        ("UPDATE audit_entry SET at = at + interval '1 second' WHERE seq = 3", "hash does not"),
        ("DELETE FROM audit_entry WHERE seq = 3", "expected seq 3, found 4"),
        (
            # Rewriting an entry's hash to fit breaks the link from the next one.
            "UPDATE audit_entry SET hash = repeat('a', 64) WHERE seq = 3",
            "hash does not match",
        ),
    ],
)
async def test_tampering_with_a_row_is_detected(
    session: AsyncSession, sql: str, reason: str
) -> None:
    entries = await _append(session, 5)
    await _tamper(session, sql)
    result = await audit.verify(session=session)
    assert not result.ok
    assert result.first_bad_seq in (3, 4)
    assert reason in (result.reason or "")
    assert result.entries == 2 and result.head_hash == entries[1].hash


async def test_a_forged_but_self_consistent_entry_breaks_the_next_link(
    session: AsyncSession,
) -> None:
    entries = await _append(session, 4)
    forged = entries[1]
    digest = audit.content_digest({"i": 42, "ok": True})
    new_hash = audit.entry_hash(
        seq=2,
        at=audit.format_at(forged.at),
        kind=forged.kind,
        subject=forged.subject,
        digest=digest,
        prev_hash=forged.prev_hash,
    )
    await _tamper(
        session,
        f"UPDATE audit_entry SET content = '{{\"i\": 42, \"ok\": true}}', digest = '{digest}', "
        f"hash = '{new_hash}' WHERE seq = 2",
    )
    result = await audit.verify(session=session)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "prev_hash" in (result.reason or "")


async def test_anyone_reads_the_log_in_pages(client: AsyncClient, session: AsyncSession) -> None:
    # The app installs the founding agreement at start: that is entry 1.
    await _append(session, 4)
    first = await client.get("/v1/audit", params={"limit": 2})
    assert first.status_code == 200
    assert [e["seq"] for e in first.json()] == [1, 2]
    rest = await client.get("/v1/audit", params={"after": 2})
    assert [e["seq"] for e in rest.json()] == [3, 4, 5]
    assert (await client.get("/v1/audit", params={"after": 5})).json() == []
    entry = rest.json()[0]
    assert set(entry) == {
        "seq",
        "at",
        "kind",
        "subject",
        "content",
        "digest",
        "prev_hash",
        "hash",
    }
    for bad in ({"after": -1}, {"limit": 0}, {"limit": 1001}, {"after": "x"}):
        response = await client.get("/v1/audit", params=bad)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"


async def test_the_chain_verifies_from_the_api_alone_as_docs_audit_md_says(
    client: AsyncClient, session: AsyncSession
) -> None:
    await _append(session, 3)
    entries = (await client.get("/v1/audit")).json()
    assert len(entries) == 4

    # The few lines of docs/audit.md, with nothing from this code base.
    def canonical(value: object) -> bytes:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    prev = "0" * 64
    for expected_seq, e in enumerate(entries, start=1):
        assert e["seq"] == expected_seq
        assert e["digest"] == hashlib.sha256(canonical(e["content"])).hexdigest()
        assert e["prev_hash"] == prev
        header = {k: e[k] for k in ("seq", "at", "kind", "subject", "digest", "prev_hash")}
        assert e["hash"] == hashlib.sha256(canonical(header)).hexdigest()
        prev = e["hash"]


def _cli(settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "verify-audit"],
        env={"COOP_DATABASE_URL": settings.database_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_cli_verifies_the_chain_and_fails_on_tampering(
    session: AsyncSession, settings: Settings
) -> None:
    await _append(session, 3)
    intact = await asyncio.to_thread(_cli, settings)
    assert intact.returncode == 0, intact.stderr
    assert "audit log intact: 3 entries" in intact.stdout
    await _tamper(session, "UPDATE audit_entry SET subject = 'x' WHERE seq = 2")
    broken = await asyncio.to_thread(_cli, settings)
    assert broken.returncode == 1
    assert "BROKEN at seq 2" in broken.stdout
