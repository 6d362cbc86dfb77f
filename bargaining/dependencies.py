"""Request-scoped inputs of the bargaining routes: the clock (the service's one, from
`coop.clock`) and the completed-trips source."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bargaining.dividend import PatronageSource
from bargaining.impact import CompletedTripsSource
from coop.clock import Now
from coop.state import CoreState, state_of

__all__ = [
    "BallotMaster",
    "BargainingState",
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
