"""HTTP routes for rider accounts."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, status

from dispatch.core.auth import AccountCreated, Role, bearer_from_headers, resolve
from dispatch.core.clients import client_host
from dispatch.core.db import SessionDep
from dispatch.core.riders import service
from dispatch.core.riders.schemas import RiderCreate

router = APIRouter(prefix="/v1/riders", tags=["riders"])


async def signup_limit(request: Request, session: SessionDep) -> None:
    """`COOP_SIGNUP_LIMIT` accounts per client address; an admin token is exempt (an operator
    bulk-loads accounts). Any other token changes nothing: sign-up needs none."""
    token = bearer_from_headers(request.headers.get("authorization"))
    if token:
        principal = await resolve(session=session, token=token, settings=request.app.state.settings)
        if principal is not None and principal.role is Role.admin:
            return
    await request.app.state.rate_limits.check_signup(client_host(request.scope))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountCreated,
    dependencies=[Depends(signup_limit)],
)
async def register_rider(body: RiderCreate, session: SessionDep) -> AccountCreated:
    """Anyone may open a rider account (`COOP_SIGNUP_LIMIT` per client address); the answer
    carries its only copy of the token."""
    rider, token = await service.create(session=session, name=body.name)
    return AccountCreated(id=rider.id, token=token)
