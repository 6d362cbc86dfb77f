"""Telling the members a vote has opened, on their phones (`coop.push`): one push per member on
the vote's roll, queued and never waited for. A member who chose not to have `vote` pushes, or
has no device, is not pushed; every member still sees the vote on their page and over HTTP."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.models import Ballot
from bargaining.schemas import ProposalOut
from coop.auth import Role
from coop.push.message import Urgency
from coop.push.sender import Push, sender_for
from coop.redis_client import Redis

# Push services keep a message at most about four weeks; a vote open longer is announced for
# that long (the member sees it on their page in any case).
MAX_TTL_S = 28 * 24 * 3600


def vote_push(proposal: ProposalOut, driver_id: uuid.UUID, now: datetime) -> Push | None:
    """The push announcing the vote to one member: which proposal, until when."""
    ttl_s = int(min((proposal.voting_closes_at - now).total_seconds(), MAX_TTL_S))
    if ttl_s <= 0:
        return None
    return Push(
        role=Role.driver,
        subject_id=driver_id,
        kind="vote",
        data={
            "kind": "vote",
            "proposal_id": str(proposal.id),
            "voting_closes_at": proposal.voting_closes_at.isoformat(),
        },
        ttl_s=ttl_s,
        urgency=Urgency.normal,
        topic=f"vote{proposal.id.hex[:28]}",
    )


async def vote_opened(
    *, session: AsyncSession, redis: Redis, proposal: ProposalOut, now: datetime
) -> int:
    """Queues a push to every member on the roll; answers how many were queued."""
    sender = sender_for(redis)
    if sender is None:
        return 0
    roll = await session.scalars(select(Ballot.driver_id).where(Ballot.proposal_id == proposal.id))
    queued = 0
    for driver_id in roll:
        push = vote_push(proposal, driver_id, now)
        if push is not None and sender.submit(push):
            queued += 1
    return queued
