"""The migrations build exactly the schema the models describe, upgrade the databases already
deployed, and each domain's new revisions go to the domain's own folder."""

from __future__ import annotations

import ast
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from coop.db import create_engine
from coop.settings import Settings
from server.all_models import Base
from server.migrate import VERSION_LOCATIONS, alembic_config, revision, upgrade
from tests.conftest import asyncpg_kwargs, recreate_database

# The schema and alembic_version rows of a database made before each domain owned its
# migrations (see the file's header).
DEPLOYED_SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "schema-a5f8570.sql"

# What two databases must share to have the same schema: every column, constraint, index,
# trigger, enum and function of the project (PostGIS's own functions left out), and the heads.
SCHEMA_QUERIES = {
    "columns": """
        SELECT table_name, column_name, ordinal_position, data_type, udt_name, is_nullable,
               column_default, character_maximum_length, numeric_precision
        FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 3""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' ORDER BY 1, 2""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
        FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2""",
    "enums": """
        SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY 1 ORDER BY 1""",
    "functions": """
        SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace AND NOT EXISTS (
            SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
        ORDER BY 1, 2""",
    "heads": "SELECT version_num FROM alembic_version ORDER BY 1",
}


def _include(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    return not (type_ == "table" and reflected and compare_to is None)


async def _models_differences(engine: AsyncEngine) -> list[object]:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"include_object": _include, "compare_type": True}
        )
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        return await connection.run_sync(diff)


async def _schema(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    connection = await asyncpg.connect(**asyncpg_kwargs(make_url(database_url)))
    try:
        return {
            name: [tuple(row) for row in await connection.fetch(query)]
            for name, query in SCHEMA_QUERIES.items()
        }
    finally:
        await connection.close()


async def test_models_and_migrations_agree(engine: AsyncEngine) -> None:
    assert await _models_differences(engine) == []


async def test_a_database_made_by_the_earlier_migrations_upgrades_to_the_same_schema(
    base_settings: Settings,
) -> None:
    url = make_url(base_settings.database_url)
    deployed = url.set(database=f"{url.database}_deployed")
    deployed_url = deployed.render_as_string(hide_password=False)
    await recreate_database(deployed)
    try:
        connection = await asyncpg.connect(**asyncpg_kwargs(deployed))
        try:
            await connection.execute(DEPLOYED_SCHEMA.read_text())
        finally:
            await connection.close()
        before = await _schema(deployed_url)
        assert before["heads"] == [("audit",), ("bargaining",), ("dispatch",), ("reputation",)]

        await asyncio.to_thread(upgrade, deployed_url)

        engine = create_engine(deployed_url, pool_size=1, max_overflow=0)
        try:
            assert await _models_differences(engine) == []
        finally:
            await engine.dispose()
        # The same schema as a database migrated from nothing (the suite's own), to the trigger.
        assert await _schema(deployed_url) == await _schema(base_settings.database_url)
    finally:
        admin = await asyncpg.connect(**asyncpg_kwargs(url.set(database="postgres")))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{deployed.database}" WITH (FORCE)')
        finally:
            await admin.close()


def _header(path: Path) -> dict[str, object]:
    """The module-level assignments of a revision file (revision, down_revision, ...)."""
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            values[node.target.id] = ast.literal_eval(node.value)
    return values


def test_every_domain_has_its_folder_and_every_revision_is_in_one() -> None:
    assert list(VERSION_LOCATIONS) == [
        "core",
        "riders",
        "drivers",
        "bargaining",
        "reputation",
        "dispatch",
        "pay",
    ]
    found = {
        _header(path)["revision"]: domain
        for domain, folder in VERSION_LOCATIONS.items()
        for path in folder.glob("*.py")
    }
    # The first revisions, with the ids every deployed database records.
    assert {rev: found.get(rev) for rev in ("foundation", "audit")} == {
        "foundation": "core",
        "audit": "core",
    }
    assert found.get("bargaining") == "bargaining"
    assert found.get("reputation") == "reputation"
    assert found.get("dispatch") == "dispatch"
    # Revisions live with their tables: pay's and riders' moved out of dispatch's and the core's.
    assert found.get("dispatch_pay") == "pay"
    assert found.get("rider_shared_first_name") == "riders"


def test_a_domain_whose_revision_sits_inside_another_domain_chain_keeps_one_latest(
    tmp_path: Path,
) -> None:
    """pay's first revision sits between two of dispatch's: dispatch's latest revisions are
    still only those nothing of its own descends from."""
    url = "postgresql+asyncpg://nobody@/unused"
    locations = {domain: tmp_path / domain for domain in VERSION_LOCATIONS}
    for domain, folder in VERSION_LOCATIONS.items():
        shutil.copytree(folder, locations[domain], ignore=shutil.ignore_patterns("__py*"))
    # The scenario as the tree had it then: a later dispatch revision joins the two heads.
    for later in locations["dispatch"].glob("2026-12-*.py"):
        later.unlink()
    dispatch = revision(url, "dispatch", "next", rev_id="d1", locations=locations)
    assert _header(dispatch)["down_revision"] == ("dispatch_shift", "dispatch_travel_time")
    paid = revision(url, "pay", "next", rev_id="p1", locations=locations)
    assert _header(paid)["down_revision"] == "dispatch_pay"
    core = revision(url, "core", "next", rev_id="c1", locations=locations)
    assert _header(core)["down_revision"] == "core_join_1207"


def test_a_new_revision_goes_to_its_domain_after_the_domain_latest(tmp_path: Path) -> None:
    locations = {domain: tmp_path / domain for domain in VERSION_LOCATIONS}
    for domain, folder in VERSION_LOCATIONS.items():
        if folder.exists():
            shutil.copytree(folder, locations[domain], ignore=shutil.ignore_patterns("__py*"))
    url = "postgresql+asyncpg://nobody@/unused"  # writing a revision reads no database
    # A domain with no revision yet: the copy of drivers' folder without its revisions.
    for path in locations["drivers"].glob("*.py"):
        path.unlink()

    first = revision(url, "drivers", "vehicle colour", rev_id="t1", locations=locations)
    assert first.parent == locations["drivers"]
    # A domain's first revision starts its branch off the foundation.
    assert {key: _header(first)[key] for key in ("revision", "down_revision", "branch_labels")} == {
        "revision": "t1",
        "down_revision": "foundation",
        "branch_labels": ("drivers",),
    }
    second = revision(url, "drivers", "vehicle seats", rev_id="t2", locations=locations)
    assert (_header(second)["down_revision"], _header(second)["branch_labels"]) == ("t1", None)

    bargaining = [_header(path) for path in VERSION_LOCATIONS["bargaining"].glob("*.py")]
    third = revision(url, "bargaining", "a new term", rev_id="t3", locations=locations)
    assert third.parent == locations["bargaining"]
    # After bargaining's latest revision: one of its own that none of its own revises.
    parent = _header(third)["down_revision"]
    assert parent in {header["revision"] for header in bargaining}
    assert parent not in {header["down_revision"] for header in bargaining}

    # Two written at once (both after t2): the next one revises both, joining them.
    fourth = revision(url, "drivers", "vehicle colour again", rev_id="t4", locations=locations)
    text = fourth.read_text().replace("'t4'", "'t5'").replace("vehicle colour again", "other")
    fourth.with_name("2026-01-01_other.py").write_text(text)
    sixth = revision(url, "drivers", "after both", rev_id="t6", locations=locations)
    assert _header(sixth)["down_revision"] == ("t4", "t5")

    with pytest.raises(ValueError, match="unknown domain"):
        revision(url, "matching", "x", locations=locations)


async def test_four_workers_starting_at_once_on_an_empty_database_all_serve(
    settings: Settings,
) -> None:
    """Each `serve` migrates as it starts; under the advisory lock one applies the migrations
    and the others wait, then find the schema up to date."""
    url = make_url(settings.database_url)
    fresh = url.set(database=f"{url.database}_fresh")
    await recreate_database(fresh)
    ports = []
    for _ in range(4):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    env = {
        **os.environ,
        "COOP_ENV": "test",
        "COOP_DATABASE_URL": fresh.render_as_string(hide_password=False),
        "COOP_REDIS_URL": settings.redis_url,
        "COOP_ADMIN_TOKEN": settings.admin_token,
        "COOP_BACKGROUND_TASKS": "false",
        "COOP_LOG_JSON": "false",
        "COOP_LOG_LEVEL": "WARNING",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            for worker, port in zip(workers, ports, strict=True):
                deadline = time.monotonic() + 120
                while True:
                    if worker.poll() is not None:
                        error = worker.stderr.read().decode() if worker.stderr else ""
                        raise AssertionError(f"a worker stopped ({worker.returncode}): {error}")
                    try:
                        ready = await http.get(f"http://127.0.0.1:{port}/readyz")
                        if ready.status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, "a worker did not become ready"
                    await asyncio.sleep(0.2)
        connection = await asyncpg.connect(**asyncpg_kwargs(fresh))
        try:
            versions = {row[0] for row in await connection.fetch("SELECT * FROM alembic_version")}
        finally:
            await connection.close()
        heads = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_heads()
        assert versions == set(heads)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        admin = await asyncpg.connect(**asyncpg_kwargs(fresh.set(database="postgres")))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{fresh.database}" WITH (FORCE)')
        finally:
            await admin.close()


def _unordered(schema: dict[str, list[tuple[object, ...]]]) -> dict[str, object]:
    columns = sorted((row[0], row[1], *row[3:]) for row in schema["columns"])
    return {**schema, "columns": columns}


def _roots_and_parents() -> dict[str, set[str]]:
    """For each domain, the revisions its oldest revisions revise (`base` for the foundation):
    downgrading to them unapplies every revision of the domain."""
    config = alembic_config("postgresql+asyncpg://nobody@/unused")
    scripts = ScriptDirectory.from_config(config)
    every = {script.revision: script for script in scripts.walk_revisions()}
    targets: dict[str, set[str]] = {}
    for domain, folder in VERSION_LOCATIONS.items():
        own = {
            revision
            for revision, script in every.items()
            if Path(script.path).resolve().parent == folder.resolve()
        }
        for name in own:
            down = every[name].down_revision
            parents = () if down is None else (down,) if isinstance(down, str) else tuple(down)
            if not parents:
                targets.setdefault(domain, set()).add("base")
            targets.setdefault(domain, set()).update(p for p in parents if p not in own)
    return targets


async def test_every_domain_downgrades_and_upgrades_again_to_the_same_schema(
    base_settings: Settings,
) -> None:
    """Upgrade, downgrade each domain's revisions (and what depends on them), upgrade again: the
    schema comes back identical, so every `downgrade()` undoes its `upgrade()`."""
    from alembic import command

    url = make_url(base_settings.database_url)
    trip = url.set(database=f"{url.database}_roundtrip")
    trip_url = trip.render_as_string(hide_password=False)
    await recreate_database(trip)
    try:
        await asyncio.to_thread(upgrade, trip_url)
        migrated = await _schema(trip_url)
        targets = _roots_and_parents()
        assert set(targets) == set(VERSION_LOCATIONS)
        for target in sorted(set().union(*targets.values())):
            await asyncio.to_thread(command.downgrade, alembic_config(trip_url), target)
            down = await _schema(trip_url)
            if target == "base":
                assert down["heads"] == [], down["heads"]
            else:
                assert (target,) in down["heads"], (target, down["heads"])
            await asyncio.to_thread(upgrade, trip_url)
            again = await _schema(trip_url)
            # PostgreSQL never renumbers columns: one dropped and added again comes last, so
            # columns are compared without their position.
            assert _unordered(again) == _unordered(migrated), f"after a downgrade to {target}"
    finally:
        admin = await asyncpg.connect(**asyncpg_kwargs(url.set(database="postgres")))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{trip.database}" WITH (FORCE)')
        finally:
            await admin.close()
