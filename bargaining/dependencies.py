"""Request-scoped inputs of the bargaining routes: the clock (the service's one, from
`dispatch.core.clock`) and the completed-trips source."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bargaining.impact import CompletedTripsSource
from dispatch.core.clock import Now
from dispatch.core.state import CoreState, state_of

__all__ = ["BargainingState", "Now", "TripsSource", "completed_trips_source"]


class BargainingState(CoreState):
    """Bargaining's part of the application state (`dispatch.core.state`)."""

    # Installed by the composition root: dispatch owns the trips.
    completed_trips_source: CompletedTripsSource


def completed_trips_source(request: Request) -> CompletedTripsSource:
    """The source dispatch installs on the app; bargaining never reads the trips table itself."""
    return state_of(request.app, BargainingState).completed_trips_source


TripsSource = Annotated[CompletedTripsSource, Depends(completed_trips_source)]
