"""The patronage ledger: a ratified dividend's allocation, posted exactly as members voted on it.

Called by the vote's close, in its transaction, so a dividend is posted once or not at all."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.models import PatronageAllocation, PatronageLine, Proposal
from coop import audit

AUDIT_PATRONAGE_ALLOCATED = "patronage.allocated"
# pg_advisory_xact_lock key ("cooppatr"): the ledger's periods are read and written one
# transaction at a time, so no two overlapping dividends are both opened or posted.
PATRONAGE_LOCK_KEY = 0x636F6F7070617472


async def allocation_overlapping(
    *, session: AsyncSession, period_from: date, period_to: date
) -> PatronageAllocation | None:
    """A dividend already posted whose days overlap these, under the ledger's lock."""
    await session.execute(select(func.pg_advisory_xact_lock(PATRONAGE_LOCK_KEY)))
    found: PatronageAllocation | None = await session.scalar(
        select(PatronageAllocation)
        .where(
            PatronageAllocation.period_from <= period_to,
            PatronageAllocation.period_to >= period_from,
        )
        .limit(1)
    )
    return found


async def overlapping(*, session: AsyncSession, proposal: Proposal) -> PatronageAllocation | None:
    """A dividend already posted for some of this proposal's days."""
    shown = proposal.patronage
    assert shown is not None, "a patronage proposal carries its allocation"
    return await allocation_overlapping(
        session=session,
        period_from=date.fromisoformat(shown["period"]["from"]),
        period_to=date.fromisoformat(shown["period"]["to"]),
    )


async def post(*, session: AsyncSession, proposal: Proposal, now: datetime) -> PatronageAllocation:
    """Writes the allocation stored on the proposal (the one shown before the vote)."""
    shown = proposal.patronage
    assert shown is not None, "a patronage proposal carries its allocation"
    allocation = PatronageAllocation(
        proposal_id=proposal.id,
        period_from=date.fromisoformat(shown["period"]["from"]),
        period_to=date.fromisoformat(shown["period"]["to"]),
        basis=shown["basis"],
        currency=shown["currency"],
        surplus=Decimal(shown["surplus"]),
        reserve_percent=Decimal(shown["reserve_percent"]),
        reserve=Decimal(shown["reserve"]),
        distributable=Decimal(shown["distributable"]),
        members=len(shown["lines"]),
        allocated_at=now,
    )
    session.add(allocation)
    await session.flush()
    for line in shown["lines"]:
        session.add(
            PatronageLine(
                proposal_id=proposal.id,
                driver_id=uuid.UUID(line["driver_id"]),
                measure=Decimal(line["measure"]),
                share=Decimal(line["share"]),
            )
        )
    await session.flush()
    await audit.append(
        session=session,
        kind=AUDIT_PATRONAGE_ALLOCATED,
        subject=f"proposal:{proposal.id}",
        content={
            "proposal_id": proposal.id,
            "period_from": shown["period"]["from"],
            "period_to": shown["period"]["to"],
            "basis": allocation.basis,
            "currency": allocation.currency,
            "surplus": allocation.surplus,
            "reserve": allocation.reserve,
            "distributable": allocation.distributable,
            "members": allocation.members,
        },
    )
    return allocation
