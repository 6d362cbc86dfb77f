"""One conftest: a real PostgreSQL/PostGIS database and a real Redis, cleaned between tests.

`make test` starts private instances and passes their URLs in COOP_DATABASE_URL/COOP_REDIS_URL.
The suite works in its own database (`<name>_test`, created anew and migrated once a run) and its
own Redis database number, so it never touches the data of `make demo`.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import hypothesis
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from coop.db import create_engine, create_sessionmaker
from coop.redis_client import Redis, create_redis, with_redis_db
from coop.settings import Settings
from server.all_models import Base
from server.app import create_app
from server.migrate import upgrade

TEST_REDIS_DB = int(os.environ.get("COOP_TEST_REDIS_DB", "1"))

# Property tests draw the same examples on every run (derandomized, from each test's own source)
# and keep no example database between runs, so a commit passes or fails for what it is. The
# `fuzz` profile (`make fuzz`) searches at random and prints how to reproduce what it finds; a
# finding is then kept as an explicit `@example` on its test (docs/testing.md).
hypothesis.settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
hypothesis.settings.register_profile(
    "fuzz", derandomize=False, database=None, max_examples=2000, print_blob=True
)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def asyncpg_kwargs(url: URL) -> dict[str, Any]:
    """asyncpg connection arguments for a SQLAlchemy URL (Unix socket given as ?host=)."""
    kwargs: dict[str, Any] = {
        "user": url.username,
        "password": url.password,
        "host": url.query.get("host") or url.host,
        "port": url.port,
        "database": url.database,
    }
    return {key: value for key, value in kwargs.items() if value is not None}


async def recreate_database(url: URL) -> None:
    admin = await asyncpg.connect(**asyncpg_kwargs(url.set(database="postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{url.database}"')
    finally:
        await admin.close()


@pytest_asyncio.fixture(scope="session")
async def base_settings() -> Settings:
    """The test run's settings; its database is created anew and migrated once per run."""
    base = Settings(env="test", background_tasks=False, log_json=False)
    main_url = make_url(base.database_url)
    test_url = main_url.set(
        database=os.environ.get("COOP_TEST_DATABASE") or f"{main_url.database}_test"
    )
    await recreate_database(test_url)
    database_url = test_url.render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, database_url)
    return base.model_copy(
        update={
            "database_url": database_url,
            "redis_url": with_redis_db(base.redis_url, TEST_REDIS_DB),
            "admin_token": "test-admin-token-0123456789abcdef",
            # The suite opens many accounts from one address, quickly: the limits themselves
            # are tested with their own low settings (tests/dispatch/test_security.py).
            "signup_limit": "100000/minute",
            "api_limit": "100000/minute",
            "signup_global_limit": "100000/minute",
            "anonymous_limit": "100000/minute",
        }
    )


@pytest_asyncio.fixture(scope="session")
async def engine(base_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(base_settings.database_url, pool_size=5, max_overflow=10)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(settings: Settings, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest_asyncio.fixture
async def session(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest_asyncio.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = create_redis(settings.redis_url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def settings(base_settings: Settings, engine: AsyncEngine) -> AsyncIterator[Settings]:
    """The settings of a test that uses the services; afterwards every table is emptied and the
    Redis database flushed, so each such test starts from a clean state."""
    yield base_settings
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    client = create_redis(base_settings.redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@pytest_asyncio.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary folder with a short path: Unix socket paths are limited to about 100 bytes,
    and pytest's tmp_path can be longer."""
    with tempfile.TemporaryDirectory(prefix="coop-") as folder:
        yield Path(folder)


@pytest.fixture
def admin_headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.admin_token}"}


# --- background tasks fail loudly -----------------------------------------------------------
# (what it needs is imported with it)
from collections.abc import Iterable  # noqa: E402

from coop.tasks import TaskBug, TaskRunner  # noqa: E402


def background_bugs(values: Iterable[object]) -> list[TaskBug]:
    """The bugs recorded by the task runners (`coop.tasks`) of the apps among `values` (a test's
    fixture values: an app, or a tuple holding one)."""
    apps = [
        part
        for value in values
        for part in (value if isinstance(value, tuple) else (value,))
        if isinstance(part, FastAPI)
    ]
    return [bug for app in apps for bug in getattr(app.state, "tasks", TaskRunner()).bugs]


def fail_on_background_bugs(values: Iterable[object]) -> None:
    """Fails the test when a background task of its app failed with a bug (no outage): logged
    with its traceback, it would otherwise only scroll by in a passing test's output."""
    bugs = background_bugs(values)
    if bugs:
        named = ", ".join(f"{bug.task}: {type(bug.error).__name__}" for bug in bugs)
        pytest.fail(f"a background task failed with a bug ({named}); see its log", pytrace=False)


@pytest.fixture(autouse=True)
def _background_bugs_fail_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Set up before (so checked after) the app fixtures of the test, once their runners stopped."""
    yield
    fail_on_background_bugs(request.node.funcargs.values())
