"""HTTP routes for rider accounts."""

from __future__ import annotations

from fastapi import APIRouter, status

from dispatch.core.auth import AccountCreated
from dispatch.core.db import SessionDep
from dispatch.core.riders import service
from dispatch.core.riders.schemas import RiderCreate

router = APIRouter(prefix="/v1/riders", tags=["riders"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AccountCreated)
async def register_rider(body: RiderCreate, session: SessionDep) -> AccountCreated:
    """Anyone may open a rider account; the answer carries its only copy of the token."""
    rider, token = await service.create(session=session, name=body.name)
    return AccountCreated(id=rider.id, token=token)
