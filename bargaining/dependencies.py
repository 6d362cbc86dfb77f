"""Request-scoped inputs of the bargaining routes: the clock (the service's one, from
`coop.clock`) and the completed-trips source."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from bargaining.dividend import PatronageSource
from bargaining.impact import CompletedTripsSource
from bargaining.impact_replay import ReplayRun
from coop.auth import Role, bearer_from_headers, bearer_scheme, resolve
from coop.clock import Now
from coop.dependencies import SessionDep
from coop.state import CoreState, state_of
from drivers.models import Driver

__all__ = [
    "BallotMaster",
    "BargainingState",
    "MemberReader",
    "Now",
    "PatronageSrc",
    "TripsSource",
    "ballot_master",
    "completed_trips_source",
    "patronage_source",
]


class BargainingState(CoreState):
    """Bargaining's part of the application state (`coop.state`)."""

    # Installed by the composition root: dispatch owns the trips.
    completed_trips_source: CompletedTripsSource
    # The master key that seals ballots (COOP_BALLOT_KEY; bargaining.secrecy).
    ballot_master_key: bytes
    # The patronage dividend's measures, from dispatch's pay (bargaining never reads trips).
    patronage_source: PatronageSource
    # A proposal's impact replayed through dispatch's matcher (bargaining.impact_replay).
    impact_replay_run: ReplayRun


def completed_trips_source(request: Request) -> CompletedTripsSource:
    """The source dispatch installs on the app; bargaining never reads the trips table itself."""
    return state_of(request.app, BargainingState).completed_trips_source


def ballot_master(request: Request) -> bytes:
    """The service's ballot master key (`COOP_BALLOT_KEY`), installed on the app at start."""
    return state_of(request.app, BargainingState).ballot_master_key


BallotMaster = Annotated[bytes, Depends(ballot_master)]
TripsSource = Annotated[CompletedTripsSource, Depends(completed_trips_source)]


def patronage_source(request: Request) -> PatronageSource:
    """The patronage measures the composition root installs from dispatch's pay."""
    return state_of(request.app, BargainingState).patronage_source


PatronageSrc = Annotated[PatronageSource, Depends(patronage_source)]


async def reads_as_member(
    request: Request,
    session: SessionDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> bool:
    """Whether the caller of a public read sent a member's token (a driver's, not one of the
    simulated city's): only members see a dividend's lines. No token, or one that is not valid,
    reads as the public, as these reads always answered: a client that sends a stale token to a
    public route is not refused now."""
    token = bearer_from_headers(request.headers.get("authorization"))
    if token is None:
        return False
    settings = state_of(request.app, CoreState).settings
    principal = await resolve(session=session, token=token, settings=settings)
    if principal is None or principal.role is not Role.driver or principal.subject_id is None:
        return False
    driver = await session.get(Driver, principal.subject_id)
    return driver is not None and not driver.simulated


MemberReader = Annotated[bool, Depends(reads_as_member)]
