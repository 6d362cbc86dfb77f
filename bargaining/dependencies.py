"""Request-scoped inputs of the bargaining routes: the clock (the service's one, from
`dispatch.core.clock`) and the completed-trips source."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bargaining.impact import CompletedTripsSource
from dispatch.core.clock import Now

__all__ = ["Now", "TripsSource", "completed_trips_source"]


def completed_trips_source(request: Request) -> CompletedTripsSource:
    """The source dispatch installs on the app; bargaining never reads the trips table itself."""
    source: CompletedTripsSource = request.app.state.completed_trips_source
    return source


TripsSource = Annotated[CompletedTripsSource, Depends(completed_trips_source)]
