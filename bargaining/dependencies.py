"""Request-scoped inputs of the bargaining routes: the clock and the completed-trips source."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from bargaining.impact import CompletedTripsSource
from dispatch.core.db import utcnow


def current_time(request: Request) -> datetime:
    """Now, from `app.state.clock` when one is installed (the tests move it), else the system."""
    clock: Callable[[], datetime] = getattr(request.app.state, "clock", utcnow)
    return clock()


def completed_trips_source(request: Request) -> CompletedTripsSource:
    """The source dispatch installs on the app; bargaining never reads the trips table itself."""
    source: CompletedTripsSource = request.app.state.completed_trips_source
    return source


Now = Annotated[datetime, Depends(current_time)]
TripsSource = Annotated[CompletedTripsSource, Depends(completed_trips_source)]
