"""The patronage ledger: a ratified dividend's allocation, posted exactly as members voted on it.

Called by the vote's close, in its transaction, so a dividend is posted once or not at all."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.models import PatronageAllocation, PatronageLine, Proposal
from coop import audit

AUDIT_PATRONAGE_ALLOCATED = "patronage.allocated"


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
