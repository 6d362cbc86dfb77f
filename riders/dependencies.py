"""The calling rider, loaded and validated."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from coop.auth import CurrentPrincipal, Role, require_role
from coop.dependencies import SessionDep
from coop.errors import Unauthorized
from riders.models import Rider


async def get_current_rider(principal: CurrentPrincipal, session: SessionDep) -> Rider:
    require_role(principal, Role.rider)
    assert principal.subject_id is not None
    rider = await session.get(Rider, principal.subject_id)
    if rider is None:
        raise Unauthorized("The token's account no longer exists")
    return rider


CurrentRider = Annotated[Rider, Depends(get_current_rider)]
