"""Database plumbing: the declarative base, the engine and the per-request session."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def sql_literal(member: enum.StrEnum) -> str:
    """An enum member as an SQL string literal, for statuses written into a query's text.

    Literals rather than bind parameters: the planner must see the value to use a partial index
    whose predicate names it (`WHERE status = 'requested'`)."""
    if not member.value.isidentifier():
        raise ValueError(f"{member.value!r} is not a plain name")
    return f"'{member.value}'"


def sql_list(members: Iterable[enum.StrEnum]) -> str:
    """`('a', 'b')`: enum members as an SQL list, in their declaration order (stable text)."""
    chosen = set(members)
    if not chosen:
        raise ValueError("an SQL list needs at least one member")
    kind = type(next(iter(chosen)))
    return "(" + ", ".join(sql_literal(member) for member in kind if member in chosen) + ")"


def create_engine(
    database_url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 20,
    pre_ping: bool = True,
    autocommit: bool = False,
) -> AsyncEngine:
    """The process's engine. `pre_ping=False` saves the round trip that checks a pooled
    connection before each use (a dead one then fails its statement, and is replaced at the next
    checkout); `autocommit=True` sends statements with no BEGIN/COMMIT around them, for a writer
    whose every unit of work is one statement."""
    options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=pre_ping,
        # A statement's parameters (names, comments, positions) never go into an exception's
        # message, and so never into a log.
        hide_parameters=True,
        # Times travel as UTC; the server's zone must never leak into them.
        connect_args={"server_settings": {"timezone": "UTC", "application_name": "coop"}},
        **options,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
