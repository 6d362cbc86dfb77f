"""Alembic environment: runs the migrations over the service's own async engine.

It knows no domain: the caller (`server.migrate`) passes the complete metadata in
`config.attributes["target_metadata"]` and the domains' version folders in `version_locations`.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config
# Every worker runs the migrations as it starts: they take turns under this transaction-level
# advisory lock, so the first applies them and the others find the schema up to date.
MIGRATION_LOCK_KEY = 0x636F6F702D6D6967  # "coop-mig"
target_metadata = config.attributes.get("target_metadata")


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    # PostGIS and its extensions own tables (spatial_ref_sys, topology, ...) we never model.
    if type_ == "table" and reflected and compare_to is None:
        return False
    return True


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async_migrations())
