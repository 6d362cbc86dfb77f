"""Who the caller is, as a member: load-and-validate dependencies for routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from coop.auth import CurrentPrincipal, Role, require_role
from coop.dependencies import SessionDep
from coop.errors import Forbidden, Unauthorized
from drivers import service
from drivers.models import Driver


async def get_current_driver(principal: CurrentPrincipal, session: SessionDep) -> Driver:
    require_role(principal, Role.driver)
    assert principal.subject_id is not None
    driver = await session.get(Driver, principal.subject_id)
    if driver is None:  # the account was removed after the token was issued
        raise Unauthorized("The token's account no longer exists")
    return driver


CurrentDriver = Annotated[Driver, Depends(get_current_driver)]


async def get_committee_member(driver: CurrentDriver) -> Driver:
    if not driver.committee:
        raise Forbidden("Only members of the bargaining committee may do this")
    return driver


async def get_reviewer(driver: CurrentDriver) -> Driver:
    if not driver.reviewer:
        raise Forbidden("Only reviewers may do this")
    return driver


CommitteeMember = Annotated[Driver, Depends(get_committee_member)]
Reviewer = Annotated[Driver, Depends(get_reviewer)]

__all__ = ["CommitteeMember", "CurrentDriver", "Reviewer", "service"]
