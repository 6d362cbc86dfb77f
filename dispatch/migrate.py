"""Alembic, configured in code: migrations live in `dispatch/migrations/versions`, named by date.

Each domain keeps its own branch (`branch_labels`) off the foundation, so `upgrade heads` applies
them all.
"""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config

from dispatch.settings import PACKAGE_DIR


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(PACKAGE_DIR / "migrations"))
    config.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "heads")


async def upgrade_async(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)


def revision(database_url: str, message: str, head: str) -> None:
    command.revision(alembic_config(database_url), message=message, head=head)
