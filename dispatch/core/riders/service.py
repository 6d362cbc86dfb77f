"""Domain operations on rider accounts."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.core.auth import Role, issue_token
from dispatch.core.riders.models import Rider


async def create(*, session: AsyncSession, name: str) -> tuple[Rider, str]:
    rider = Rider(id=uuid.uuid4(), name=name)
    session.add(rider)
    await session.flush()
    token = await issue_token(session=session, role=Role.rider, subject_id=rider.id)
    await session.commit()
    return rider, token
