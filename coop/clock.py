"""The service's one clock, injected: routes take `Now` and hand the time to the services, which
never read the system clock themselves. It is `app.state.clock` (`coop.state`): the
system's UTC time, unless a test installs another."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from coop.state import CoreState, state_of


def current_time(request: Request) -> datetime:
    """Now, by the app's clock."""
    return state_of(request.app, CoreState).clock()


Now = Annotated[datetime, Depends(current_time)]
