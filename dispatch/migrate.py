"""Alembic, configured in code: the environment is `dispatch/core/migrations`; versions are
named by date.

Each domain keeps its own branch (`branch_labels`) off the foundation, so `upgrade heads` applies
them all.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from dispatch.all_models import Base
from dispatch.core.settings import PACKAGE_DIR


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(PACKAGE_DIR / "core" / "migrations"))
    config.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["target_metadata"] = Base.metadata
    return config


def upgrade(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "heads")


def revision(database_url: str, message: str, head: str) -> None:
    command.revision(alembic_config(database_url), message=message, head=head)
