"""HTTP routes for rider accounts."""

from __future__ import annotations

from fastapi import APIRouter, status

from dispatch.db import SessionDep
from dispatch.riders import service
from dispatch.riders.schemas import RiderCreate
from drivers.schemas import AccountCreated

router = APIRouter(prefix="/v1/riders", tags=["riders"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AccountCreated)
async def register_rider(body: RiderCreate, session: SessionDep) -> AccountCreated:
    """Anyone may open a rider account; the answer carries its only copy of the token."""
    rider, token = await service.create(session=session, name=body.name)
    return AccountCreated(id=rider.id, token=token)
