"""Devices and push preferences over HTTP: thin adapters over `coop.push.service`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel

from coop.auth import CurrentPrincipal, Principal
from coop.clock import Now
from coop.dependencies import SessionDep
from coop.errors import Forbidden
from coop.push import service
from coop.push.service import DeviceIn, DeviceOut, PreferencesIn, PreferencesOut
from coop.push.state import PushState
from coop.state import state_of

router = APIRouter(tags=["push"])


class PushKey(BaseModel):
    """What an app subscribes with: `applicationServerKey` in a browser, the VAPID key a
    UnifiedPush distributor is given."""

    public_key: str
    kinds: list[str]


def _account(principal: Principal) -> Principal:
    if principal.bootstrap or principal.subject_id is None:
        raise Forbidden("The bootstrap admin token is no account; it has no devices")
    return principal


@router.get("/v1/push/key", response_model=PushKey)
async def push_key(request: Request) -> PushKey:
    """The service's VAPID public key (base64url, an uncompressed P-256 point)."""
    vapid = state_of(request.app, PushState).vapid
    return PushKey(public_key=vapid.public_key, kinds=list(service.KINDS))


@router.post("/v1/devices", status_code=status.HTTP_201_CREATED, response_model=DeviceOut)
async def register_device(
    device: DeviceIn, request: Request, principal: CurrentPrincipal, session: SessionDep, now: Now
) -> DeviceOut:
    """Registers a push subscription for the caller's account, tied to the caller's token."""
    principal = _account(principal)
    settings = state_of(request.app, PushState).settings
    service.check_endpoint(device.endpoint, allow_loopback=settings.push_allow_loopback)
    row = await service.register(session=session, principal=principal, device=device, now=now)
    await session.commit()
    return service.view(row, principal)


@router.get("/v1/devices", response_model=list[DeviceOut])
async def list_devices(principal: CurrentPrincipal, session: SessionDep) -> list[DeviceOut]:
    """The caller's account's devices, oldest first; never their endpoints or keys."""
    principal = _account(principal)
    rows = await service.devices_of(session=session, principal=principal)
    return [service.view(row, principal) for row in rows]


@router.delete(
    "/v1/devices/{device_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={204: {"description": "Removed: nothing is pushed to it any more"}},
)
async def remove_device(
    device_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    principal = _account(principal)
    await service.remove(session=session, principal=principal, device_id=device_id)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/push/preferences", response_model=PreferencesOut)
async def get_preferences(principal: CurrentPrincipal, session: SessionDep) -> PreferencesOut:
    principal = _account(principal)
    assert principal.subject_id is not None
    kinds = await service.preferences(
        session=session, role=principal.role, subject_id=principal.subject_id
    )
    return PreferencesOut(kinds=kinds, available=list(service.KINDS))


@router.put("/v1/push/preferences", response_model=PreferencesOut)
async def put_preferences(
    body: PreferencesIn, principal: CurrentPrincipal, session: SessionDep, now: Now
) -> PreferencesOut:
    """The kinds of push the account wants (the others are not pushed; frames still are)."""
    principal = _account(principal)
    assert principal.subject_id is not None
    kinds = await service.set_preferences(
        session=session,
        role=principal.role,
        subject_id=principal.subject_id,
        kinds=body.kinds,
        now=now,
    )
    await session.commit()
    return PreferencesOut(kinds=kinds, available=list(service.KINDS))
