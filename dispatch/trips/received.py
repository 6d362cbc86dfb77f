"""The push receipt: the driver's app, opened from an offer's push, says it has the offer. It
counts as delivered as the socket's write does (`trip_offer.delivered_at`), so an offer the
driver saw through a push and let run out is `expired`, and one that reached them by no way at
all stays `undelivered`, held against no one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from coop.clock import Now
from coop.dependencies import SessionDep
from dispatch.states import OfferStatus
from dispatch.trips.exceptions import NotYourOffer, OfferNotFound
from dispatch.trips.models import Offer
from drivers.dependencies import CurrentDriver

router = APIRouter(prefix="/v1", tags=["trips"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid token"},
    403: {"description": "An offer made to another driver, or not a driver's token"},
    404: {"description": "No such offer"},
}


class OfferReceived(BaseModel):
    offer_id: uuid.UUID
    status: str = Field(description="The offer's status now: only `pending` can be accepted")
    expires_at: datetime
    delivered_at: datetime | None = Field(
        description="When the offer first reached the driver (socket or push receipt)"
    )


async def record_receipt(
    *, session: AsyncSession, offer_id: uuid.UUID, driver_id: uuid.UUID, now: datetime
) -> Offer:
    """Marks the driver's pending offer delivered (the first receipt counts); commits. Answers
    the offer as it is, whatever its status (a late receipt changes nothing)."""
    await session.execute(
        update(Offer)
        .where(
            Offer.id == offer_id,
            Offer.driver_id == driver_id,
            Offer.status == OfferStatus.pending,
            Offer.delivered_at.is_(None),
        )
        .values(delivered_at=now)
    )
    await session.commit()
    offer = await session.scalar(
        select(Offer).where(Offer.id == offer_id).execution_options(populate_existing=True)
    )
    if offer is None:
        raise OfferNotFound(f"No offer {offer_id}")
    if offer.driver_id != driver_id:
        raise NotYourOffer("This offer was made to another driver")
    return offer


@router.post("/offers/{offer_id}/received", response_model=OfferReceived, responses=_PROBLEMS)
async def offer_received(
    offer_id: uuid.UUID, driver: CurrentDriver, session: SessionDep, now: Now
) -> OfferReceived:
    """The offered driver's app has the offer (opened from its push): it counts as delivered.
    Answers the offer's status, so an app opened late shows it is gone."""
    offer = await record_receipt(session=session, offer_id=offer_id, driver_id=driver.id, now=now)
    return OfferReceived(
        offer_id=offer.id,
        status=offer.status.value,
        expires_at=offer.expires_at,
        delivered_at=offer.delivered_at,
    )
