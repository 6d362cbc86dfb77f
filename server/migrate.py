"""Alembic, configured in code: the environment is `coop/migrations` (it knows no domain);
each domain keeps its revisions in its own folder, listed here in `VERSION_LOCATIONS`.

Each domain's revisions form their own branch off the foundation, so `upgrade heads` applies them
all. `python -m server revision DOMAIN "message"` writes a new revision into the domain's folder,
after the domain's latest one (docs/architecture.md, "Migrations").
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import cast

from alembic import command
from alembic.config import Config
from alembic.script import Script, ScriptDirectory

import bargaining
import dispatch
import drivers
import pay
import reputation
import riders
from coop.settings import PACKAGE_DIR
from server.all_models import Base

ENVIRONMENT = PACKAGE_DIR / "migrations"

# Where each domain's revisions live, from the bottom layer up. A revision goes to the domain
# whose tables it changes. The dispatch domain (trips, matching, realtime, locations) keeps one
# folder, dispatch/migrations: its tables are the trip's and what serves it.
VERSION_LOCATIONS: Mapping[str, Path] = {
    "core": ENVIRONMENT / "versions",
    "riders": Path(riders.__file__).parent / "migrations",
    "drivers": Path(drivers.__file__).parent / "migrations",
    "bargaining": Path(bargaining.__file__).parent / "migrations",
    "reputation": Path(reputation.__file__).parent / "migrations",
    "dispatch": Path(dispatch.__file__).parent / "migrations",
    "pay": Path(pay.__file__).parent / "migrations",
}

# The revision every domain's branch starts from.
FOUNDATION = "foundation"


def alembic_config(database_url: str, locations: Mapping[str, Path] = VERSION_LOCATIONS) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ENVIRONMENT))
    config.set_main_option("path_separator", "newline")
    config.set_main_option("version_locations", "\n".join(str(p) for p in locations.values()))
    config.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["target_metadata"] = Base.metadata
    return config


def upgrade(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "heads")


def domain_heads(config: Config, folder: Path) -> tuple[str, ...]:
    """The latest revisions kept in `folder`: those no other revision of the folder revises
    (several when two were written at once; none when the folder has none yet)."""
    scripts = ScriptDirectory.from_config(config)
    every = {script.revision: script for script in scripts.walk_revisions()}
    own = {
        revision
        for revision, script in every.items()
        if Path(script.path).resolve().parent == folder.resolve()
    }
    # A folder's revision that another of its revisions descends from, directly or through
    # another domain's (pay's first revision sits between two of dispatch's), is not its latest.
    below: set[str] = set()
    for revision in own:
        stack = list(_parents(every[revision]))
        while stack:
            parent = stack.pop()
            if parent not in below:
                below.add(parent)
                stack.extend(_parents(every[parent]))
    return tuple(sorted(own - below))


def _parents(script: Script) -> tuple[str, ...]:
    down = script.down_revision
    if down is None:
        return ()
    return (down,) if isinstance(down, str) else tuple(down)


def revision(
    database_url: str,
    domain: str,
    message: str,
    *,
    autogenerate: bool = False,
    rev_id: str | None = None,
    locations: Mapping[str, Path] = VERSION_LOCATIONS,
) -> Path:
    """Write a new revision into `domain`'s folder, revising that domain's latest revisions (or
    starting the domain's branch off the foundation); returns the new file's path."""
    if domain not in locations:
        raise ValueError(f"unknown domain {domain!r}: one of {', '.join(locations)}")
    config = alembic_config(database_url, locations)
    folder = locations[domain]
    heads = domain_heads(config, folder)
    # Several latest revisions (two written at once) are all revised by the new one, which so
    # joins them; alembic takes a tuple of heads here, as its `merge` does.
    script = command.revision(
        config,
        message=message,
        autogenerate=autogenerate,
        rev_id=rev_id,
        head=cast(str, heads) if heads else FOUNDATION,
        splice=True,
        branch_label=None if heads else domain,
        version_path=str(folder),
    )
    assert script is not None and not isinstance(script, list)
    return Path(script.path)
