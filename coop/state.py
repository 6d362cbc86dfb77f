"""The application's state, typed: what `app.state` holds, as attributes mypy can see.

One object sits on `app.state`, built by the composition root (`server.app.AppState`). Each
layer declares the part it reads as a subclass of `CoreState` (bargaining's `BargainingState`,
reputation's `ReputationState`, the dispatch domain's `DispatchState`), and reads it with
`state_of(app, ItsState)`: typed, and without importing the layers above, whose class of state
the composition root assembles from all the parts.

`CoreState` is a Starlette `State`, so Starlette and FastAPI see what they expect, and an
attribute read before it is set fails as it always did (`AttributeError`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.datastructures import State

from coop.db import utcnow
from coop.tasks import TaskRunner

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from coop.geo import ServiceArea
    from coop.observability import Metrics
    from coop.ratelimit import RateLimits
    from coop.redis_client import Redis
    from coop.settings import Settings

Clock = Callable[[], datetime]


class CoreState(State):
    """What the platform holds: set when the app is made, and (the pools) by its lifespan."""

    settings: Settings
    metrics: Metrics
    service_area: ServiceArea
    # The service's one clock: the system's (UTC) unless a test installs another.
    clock: Clock
    # Every background task of the process (coop.tasks); the lifespan stops it.
    tasks: TaskRunner
    # The rate limits, counted in Redis (coop.ratelimit).
    rate_limits: RateLimits
    # Opened by the lifespan, closed after it.
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis

    def __init__(self, *, settings: Settings, metrics: Metrics, service_area: ServiceArea) -> None:
        super().__init__()
        self.settings = settings
        self.metrics = metrics
        self.service_area = service_area
        self.clock = utcnow
        # Read through the state, so a clock a test installs later is the one it stamps with.
        self.tasks = TaskRunner(registry=metrics.registry, clock=lambda: self.clock())


StateT = TypeVar("StateT", bound=CoreState)


def state_of(app: Any, kind: type[StateT]) -> StateT:
    """`app.state` as the part `kind` a layer declared (the composition root's state is all of
    them); an app not made by the composition root is a wiring mistake, never a client's."""
    state = app.state
    if not isinstance(state, kind):
        raise RuntimeError(
            f"app.state is a {type(state).__name__}, not a {kind.__name__}: "
            "make the app with server.app.create_app"
        )
    return state
