"""A member's own bargaining records in their personal-data export (GET /v1/drivers/me/export).

The composition root installs these as export sections (`server.exports`). Ballots are secret:
each query is bound to the one member, as `GET /v1/proposals/{id}/ballot` is.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import service
from bargaining.dividend import member_lines
from bargaining.models import Ballot, Proposal


async def ballots(
    *, session: AsyncSession, master: bytes, driver_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The member's own place on each vote's roll: while the vote is open their choice (null if
    unused) and when; once it has closed, `sealed` (no one can find their ballot any more)."""
    rows = await session.execute(
        select(Ballot.proposal_id, Proposal.title)
        .join(Proposal, Proposal.id == Ballot.proposal_id)
        .where(Ballot.driver_id == driver_id)
        .order_by(Proposal.opened_at, Proposal.id)
    )
    section = []
    for proposal_id, title in rows.all():
        own = await service.own_ballot(
            session=session, master=master, proposal_id=proposal_id, driver_id=driver_id
        )
        section.append(
            {
                "proposal_id": proposal_id,
                "title": title,
                "choice": own.choice.value if own.choice is not None else None,
                "cast_at": None,  # a ballot keeps no date (docs/agreement.md)
                "sealed": own.sealed,
            }
        )
    return section


async def proposals_made(*, session: AsyncSession, driver_id: uuid.UUID) -> list[dict[str, Any]]:
    """The proposals the member opened as a committee member (the record names the proposer)."""
    proposals = await session.scalars(
        select(Proposal)
        .where(Proposal.proposed_by == driver_id)
        .order_by(Proposal.opened_at, Proposal.id)
    )
    return [
        {
            "proposal_id": proposal.id,
            "title": proposal.title,
            "opened_at": proposal.opened_at,
            "status": proposal.status.value,
        }
        for proposal in proposals
    ]


async def patronage(*, session: AsyncSession, driver_id: uuid.UUID) -> list[dict[str, Any]]:
    """The member's lines of every dividend posted or being voted on."""
    return [
        {
            "proposal_id": line.proposal_id,
            "status": line.status,
            "period": {"from": line.period_from.isoformat(), "to": line.period_to.isoformat()},
            "basis": line.basis,
            "measure": f"{line.measure.normalize():f}",
            "share": f"{line.share:.2f}",
            "currency": line.currency,
        }
        for line in await member_lines(session=session, driver_id=driver_id)
    ]
