"""Domain operations on rider accounts."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from coop.auth import Role, issue_token
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
