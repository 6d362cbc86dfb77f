"""Who the caller is, as a member: load-and-validate dependencies for routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from coop.auth import BallotPrincipal, CurrentPrincipal, Principal, Role, require_role
from coop.dependencies import SessionDep
from coop.errors import Forbidden, Unauthorized
from drivers import service
from drivers.models import Driver


async def get_current_driver(principal: CurrentPrincipal, session: SessionDep) -> Driver:
    return await _driver(principal, session)


async def get_ballot_driver(principal: BallotPrincipal, session: SessionDep) -> Driver:
    """The member, on a route about their own ballot (rate-limited per day: `coop.auth`)."""
    return await _driver(principal, session)


async def _driver(principal: Principal, session: AsyncSession) -> Driver:
    require_role(principal, Role.driver)
    assert principal.subject_id is not None
    driver = await session.get(Driver, principal.subject_id)
    if driver is None:  # the account was removed after the token was issued
        raise Unauthorized("The token's account no longer exists")
    return driver


CurrentDriver = Annotated[Driver, Depends(get_current_driver)]
BallotDriver = Annotated[Driver, Depends(get_ballot_driver)]


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

__all__ = ["BallotDriver", "CommitteeMember", "CurrentDriver", "Reviewer", "service"]
