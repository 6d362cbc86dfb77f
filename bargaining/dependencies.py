"""Request-scoped inputs of the bargaining routes: the clock (the service's one, from
`dispatch.core.clock`) and the completed-trips source."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bargaining.impact import CompletedTripsSource
from dispatch.core.clock import Now
from dispatch.core.state import CoreState, state_of

__all__ = [
    "BallotMaster",
    "BargainingState",
    "Now",
    "TripsSource",
    "ballot_master",
    "completed_trips_source",
]


class BargainingState(CoreState):
    """Bargaining's part of the application state (`dispatch.core.state`)."""

    # Installed by the composition root: dispatch owns the trips.
    completed_trips_source: CompletedTripsSource
    # The master key that seals ballots (COOP_BALLOT_KEY; bargaining.secrecy).
    ballot_master_key: bytes


def completed_trips_source(request: Request) -> CompletedTripsSource:
    """The source dispatch installs on the app; bargaining never reads the trips table itself."""
    return state_of(request.app, BargainingState).completed_trips_source


def ballot_master(request: Request) -> bytes:
    """The service's ballot master key (`COOP_BALLOT_KEY`), installed on the app at start."""
    return state_of(request.app, BargainingState).ballot_master_key


BallotMaster = Annotated[bytes, Depends(ballot_master)]
TripsSource = Annotated[CompletedTripsSource, Depends(completed_trips_source)]
