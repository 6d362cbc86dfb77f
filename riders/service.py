"""Domain operations on rider accounts."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coop import paging
from coop.auth import Role, issue_token
from coop.search import Match, contains_pattern
from riders.models import Rider


async def create(
    *, session: AsyncSession, name: str, first_name: str | None = None
) -> tuple[Rider, str]:
    rider = Rider(id=uuid.uuid4(), name=name, shared_first_name=first_name)
    session.add(rider)
    await session.flush()
    token = await issue_token(session=session, role=Role.rider, subject_id=rider.id)
    await session.commit()
    return rider, token


async def share_first_name(*, session: AsyncSession, rider: Rider, first_name: str | None) -> Rider:
    """Sets (or, with None, withdraws) the first name the rider's drivers see."""
    rider.shared_first_name = first_name
    await session.commit()
    return rider


async def search(
    *,
    session: AsyncSession,
    query: str,
    after: tuple[str, uuid.UUID] | None,
    limit: int,
) -> list[Match]:
    """Riders whose name holds `query` (case and accents aside), in the order of their folded
    name; those after the key `after`, `limit` at most."""
    key = Rider.name_folded
    statement = select(Rider.id, Rider.name, Rider.created_at)
    if query:
        statement = statement.where(key.like(contains_pattern(query), escape="\\"))
    if after is not None:
        statement = statement.where(paging.after_key([(key, False), (Rider.id, False)], after))
    rows = await session.execute(statement.order_by(key, Rider.id).limit(limit))
    return [
        Match(
            kind="rider",
            id=row.id,
            name=row.name,
            status=None,
            member_number=None,
            created_at=row.created_at,
        )
        for row in rows
    ]
