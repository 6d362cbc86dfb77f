"""Reading proposals: one, or a page of them, each closed first if its deadline has passed, and
what a proposal changes against the version it was opened on."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.diff import Change, diff_terms
from bargaining.models import Proposal, ProposalKind, ProposalStatus
from bargaining.service import close_due, close_if_due, get_version
from coop import paging


async def get_proposal(*, session: AsyncSession, proposal_id: uuid.UUID, now: datetime) -> Proposal:
    """One proposal, closed first if its deadline has passed."""
    return await close_if_due(session=session, proposal_id=proposal_id, now=now)


PROPOSALS_ORDER = ((Proposal.opened_at, True), (Proposal.id, False))


def proposal_key(proposal: Proposal) -> tuple[datetime, uuid.UUID]:
    return (proposal.opened_at, proposal.id)


async def list_proposals(
    *,
    session: AsyncSession,
    now: datetime,
    status: ProposalStatus | None,
    limit: int | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[Proposal]:
    """Proposals, newest first, after closing any whose deadline has passed; at most `limit`,
    those after the key `after` (paging)."""
    await close_due(session=session, now=now)
    query = select(Proposal).order_by(Proposal.opened_at.desc(), Proposal.id)
    if after is not None:
        query = query.where(paging.after_key(PROPOSALS_ORDER, after))
    if limit is not None:
        query = query.limit(limit)
    if status is not None:
        query = query.where(Proposal.status == status)
    return list(await session.scalars(query))


async def proposal_diff(*, session: AsyncSession, proposal: Proposal) -> list[Change]:
    """The proposal against the version that was in force when it opened (none for a
    patronage proposal: it changes no term)."""
    if proposal.kind is not ProposalKind.terms:
        return []
    base = await get_version(session=session, version=proposal.base_version)
    return diff_terms(base.terms, proposal.terms)
