"""The benchmarks' own database and Redis database, and accounts written straight into them."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import URL, make_url

from coop.auth import AuthToken, Role, hash_token, new_token
from coop.db import create_engine
from coop.geo import ServiceArea
from coop.redis_client import with_redis_db
from coop.settings import Settings, get_settings
from devtools.processes import ServiceProcess, free_port
from drivers.models import Driver, DriverQualification, DriverStatus, DriverVehicle
from loadtests.procstats import children_of, postmaster_pid, redis_pid
from riders.models import Rider
from server.simulator import registration
from server.simulator.movement import Point, random_point_in

BENCH_REDIS_DB = 3
# A benchmark's service gets longer to stop gracefully than the demo's: it may hold 10,000 sockets.
STOP_GRACE_S = 20.0


def asyncpg_kwargs(url: URL) -> dict[str, Any]:
    """asyncpg connection arguments for a SQLAlchemy URL (a Unix socket given as ?host=)."""
    kwargs: dict[str, Any] = {
        "user": url.username,
        "password": url.password,
        "host": url.query.get("host") or url.host,
        "port": url.port,
        "database": url.database,
    }
    return {key: value for key, value in kwargs.items() if value is not None}


@dataclass
class BenchEnv:
    """The private PostgreSQL and Redis of COOP_DATA_DIR, with a database and a Redis database
    number of the benchmarks' own (`<db>_bench`, created anew for each run, and Redis db 3), so
    a run never touches the data of `make demo` or the tests."""

    settings: Settings
    database_url: str
    redis_url: str
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @classmethod
    async def create(cls) -> BenchEnv:
        import asyncpg

        from server.migrate import upgrade

        settings = get_settings()
        main_url = make_url(settings.database_url)
        bench_url = main_url.set(database=f"{main_url.database}_bench")
        admin = await asyncpg.connect(**asyncpg_kwargs(main_url.set(database="postgres")))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{bench_url.database}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{bench_url.database}"')
        finally:
            await admin.close()
        database_url = bench_url.render_as_string(hide_password=False)
        await asyncio.to_thread(upgrade, database_url)
        redis_url = with_redis_db(settings.redis_url, BENCH_REDIS_DB)
        from coop.redis_client import create_redis

        redis = create_redis(redis_url)
        try:
            await redis.flushdb()
        finally:
            await redis.aclose()
        return cls(settings=settings, database_url=database_url, redis_url=redis_url)

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def service_env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
        env.update(
            COOP_ENV="dev",
            COOP_DATA_DIR=str(self.data_dir),
            COOP_DATABASE_URL=self.database_url,
            COOP_REDIS_URL=self.redis_url,
            COOP_ADMIN_TOKEN=self.admin_token,
            COOP_LOG_LEVEL="WARNING",
            COOP_LOG_JSON="false",
        )
        env.update(overrides)
        return env

    def service(self, name: str, **overrides: str) -> ServiceProcess:
        """`python -m server serve` on a free loopback port, on the bench database."""
        return ServiceProcess(
            host="127.0.0.1",
            port=free_port(),
            env=self.service_env(**overrides),
            log_path=self.data_dir / "bench" / f"{name}.log",
            stop_grace_s=STOP_GRACE_S,
        )

    def baseline_server(self, name: str = "baseline") -> ServiceProcess:
        """The transport-only baseline (`loadtests.baseline`) on a free loopback port."""
        port = free_port()
        return ServiceProcess(
            host="127.0.0.1",
            port=port,
            env=self.service_env(),
            log_path=self.data_dir / "bench" / f"{name}.log",
            argv=[sys.executable, "-m", "loadtests.baseline", "--port", str(port)],
            stop_grace_s=STOP_GRACE_S,
        )

    def cpu_groups(self) -> dict[str, Callable[[], list[int]]]:
        postmaster = postmaster_pid(self.data_dir)
        redis = redis_pid(self.data_dir)
        groups: dict[str, Callable[[], list[int]]] = {"generator": lambda: [os.getpid()]}
        if postmaster is not None:
            groups["postgres"] = lambda: [postmaster, *children_of(postmaster)]
        if redis is not None:
            groups["redis"] = lambda: [redis]
        return groups

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        import asyncpg

        connection = await asyncpg.connect(**asyncpg_kwargs(make_url(self.database_url)))
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()


@dataclass(frozen=True)
class Member:
    id: uuid.UUID
    token: str


def _as_dates(facts: dict[str, Any]) -> dict[str, Any]:
    """The registration's ISO dates as dates, for a direct insert."""
    return {
        name: date.fromisoformat(value) if name.endswith("_on") and value else value
        for name, value in facts.items()
    }


async def insert_accounts(
    env: BenchEnv, *, drivers: int, riders: int = 0, batch: int = 2000
) -> tuple[list[Member], list[Member]]:
    """Drivers (with vehicles) and riders with their tokens, written straight into the bench
    database: registering 10,000 over HTTP would measure the sign-up path, not the realtime one.
    The rows are those the API writes (the same models, defaults and token hashes)."""
    engine = create_engine(env.database_url, pool_size=1, max_overflow=0)
    run = secrets.token_hex(3)
    now = datetime.now(UTC)
    driver_members = [Member(uuid.uuid4(), new_token()) for _ in range(drivers)]
    rider_members = [Member(uuid.uuid4(), new_token()) for _ in range(riders)]
    try:
        async with engine.begin() as connection:
            for start in range(0, drivers, batch):
                chunk = driver_members[start : start + batch]
                await connection.execute(
                    insert(Driver),
                    [
                        {
                            "id": m.id,
                            "name": f"Bench driver {start + i}",
                            "member_number": f"B-{run}-{start + i}",
                            "status": DriverStatus.active,
                            "committee": False,
                            "reviewer": False,
                            "created_at": now,
                        }
                        for i, m in enumerate(chunk)
                    ],
                )
                # Qualified as the jurisdiction's law requires, as the simulated city's are.
                today = now.date()
                await connection.execute(
                    insert(DriverVehicle),
                    [
                        {
                            "driver_id": m.id,
                            **registration.vehicle(
                                start + i, today, plate=f"B{start + i:06d}", owner="Bench"
                            ),
                        }
                        for i, m in enumerate(chunk)
                    ],
                )
                await connection.execute(
                    insert(DriverQualification),
                    [
                        {
                            "driver_id": m.id,
                            **_as_dates(registration.qualification(start + i, today)),
                            "recorded_at": now,
                        }
                        for i, m in enumerate(chunk)
                    ],
                )
            for start in range(0, riders, batch):
                chunk = rider_members[start : start + batch]
                await connection.execute(
                    insert(Rider),
                    [
                        {"id": m.id, "name": f"Bench rider {start + i}", "created_at": now}
                        for i, m in enumerate(chunk)
                    ],
                )
            tokens = [(m, Role.driver) for m in driver_members] + [
                (m, Role.rider) for m in rider_members
            ]
            for start in range(0, len(tokens), batch):
                await connection.execute(
                    insert(AuthToken),
                    [
                        {
                            "token_hash": hash_token(m.token),
                            "role": role,
                            "subject_id": m.id,
                            "created_at": now,
                        }
                        for m, role in tokens[start : start + batch]
                    ],
                )
    finally:
        await engine.dispose()
    return driver_members, rider_members


def positions_in_area(count: int, seed: int) -> list[Point]:
    area = ServiceArea.from_file(get_settings().service_area)
    rng = random.Random(seed)
    return [random_point_in(rng, area) for _ in range(count)]
