"""The service's one clock, injected: routes take `Now` and hand the time to the services, which
never read the system clock themselves. `app.state.clock`, when one is installed (tests move it),
replaces the system's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from dispatch.core.db import utcnow

Clock = Callable[[], datetime]


def current_time(request: Request) -> datetime:
    """Now, by `app.state.clock` when one is installed, else the system's (UTC)."""
    clock: Clock = getattr(request.app.state, "clock", utcnow)
    return clock()


Now = Annotated[datetime, Depends(current_time)]
