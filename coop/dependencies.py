"""The kernel's FastAPI dependencies: a database session, Redis, the service area, the
jurisdiction profile, read from
the application state (`coop.state`). Apart from the modules that make those objects, so that
the state can name their types and they never import the state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from coop import jurisdiction
from coop.geo import ServiceArea
from coop.redis_client import Redis
from coop.state import CoreState, state_of


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with state_of(request.app, CoreState).sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def get_service_area(request: Request) -> ServiceArea:
    return state_of(request.app, CoreState).service_area


ServiceAreaDep = Annotated[ServiceArea, Depends(get_service_area)]


def get_redis(request: Request) -> Redis:
    return state_of(request.app, CoreState).redis


RedisDep = Annotated[Redis, Depends(get_redis)]


def get_jurisdiction(request: Request) -> jurisdiction.Profile:
    """The law where the co-op runs (`COOP_JURISDICTION`, checked when the settings load)."""
    return jurisdiction.load(state_of(request.app, CoreState).settings.jurisdiction)


JurisdictionDep = Annotated[jurisdiction.Profile, Depends(get_jurisdiction)]
