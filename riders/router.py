"""HTTP routes for rider accounts."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, status

from coop.auth import AccountCreated, Role, bearer_from_headers, resolve
from coop.clients import client_host
from coop.clock import Now
from coop.dependencies import SessionDep
from riders import safety, service
from riders.dependencies import CurrentRider
from riders.models import Rider
from riders.schemas import RiderCreate, RiderOut, RiderUpdate

router = APIRouter(prefix="/v1/riders", tags=["riders"])


async def signup_limit(request: Request, session: SessionDep) -> None:
    """`COOP_SIGNUP_LIMIT` accounts per client address (an IPv6 one by its /64), and
    `COOP_SIGNUP_GLOBAL_LIMIT` for the whole service; an admin token is exempt (an operator
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
    """Anyone may open a rider account (`COOP_SIGNUP_LIMIT` per client address, an IPv6 one
    by its /64; `COOP_SIGNUP_GLOBAL_LIMIT` in all); the answer carries its only copy of the
    token."""
    rider, token = await service.create(session=session, name=body.name, first_name=body.first_name)
    return AccountCreated(id=rider.id, token=token)


def _out(rider: Rider, preferences: safety.SafetyPreferences) -> RiderOut:
    return RiderOut(
        id=rider.id,
        name=rider.name,
        first_name=rider.shared_first_name,
        created_at=rider.created_at,
        safety=preferences.out(),
    )


@router.get("/me", response_model=RiderOut)
async def read_me(rider: CurrentRider, session: SessionDep) -> RiderOut:
    """The caller's rider account, with the first name their drivers see (if any) and their
    safety preferences."""
    return _out(rider, await safety.load_safety_preferences(session, rider.id))


@router.patch("/me", response_model=RiderOut)
async def update_me(
    body: RiderUpdate, rider: CurrentRider, session: SessionDep, now: Now
) -> RiderOut:
    """Sets the first name shown to your drivers (`null` withdraws it; absent keeps it) and
    your safety preferences (`safety`: only the fields given change). Drivers never see your
    account id or full name, nor your safety preferences; trips already under way show the new
    first name from their next update."""
    given = body.model_fields_set
    if "safety" in given and body.safety is not None:
        await safety.update(session=session, rider_id=rider.id, changes=body.safety, now=now)
    if "first_name" in given:
        await service.share_first_name(session=session, rider=rider, first_name=body.first_name)
    else:
        await session.commit()
    return _out(rider, await safety.load_safety_preferences(session, rider.id))
