"""The application state is one typed object: each layer reads its declared part of it."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from bargaining.dependencies import BargainingState
from coop.settings import Settings
from coop.state import CoreState, state_of
from dispatch.locations.ingest import LocationIngest
from dispatch.matching.matcher import Matcher
from dispatch.realtime.hub import Hub
from dispatch.realtime.state import DispatchState
from reputation.state import ReputationState
from server.app import AppState, create_app


def test_the_app_holds_every_layers_part(base_settings: Settings) -> None:
    app = create_app(base_settings)
    assert type(app.state) is AppState
    for part in (CoreState, BargainingState, ReputationState, DispatchState):
        assert state_of(app, part) is app.state
    state = state_of(app, CoreState)
    assert state.settings is base_settings and state.clock().tzinfo is not None
    # Set when the app is made: bargaining's and reputation's seams, the export sections.
    assert callable(state_of(app, BargainingState).completed_trips_source)
    assert callable(state_of(app, ReputationState).reputation_policy_source)
    assert "trips_driven" in state_of(app, ReputationState).export_sections["driver"]


async def test_the_lifespan_fills_in_the_pools_and_the_runtime(app: FastAPI) -> None:
    state = state_of(app, DispatchState)
    assert isinstance(state.hub, Hub)
    assert isinstance(state.locations, LocationIngest)
    assert isinstance(state.matcher, Matcher)
    assert state.matcher.sessionmaker is state.sessionmaker


async def test_a_moved_clock_is_the_time_of_every_route(app: FastAPI, client: AsyncClient) -> None:
    # The transparency report names the time it was made: the app's clock, not the system's.
    moved = state_of(app, CoreState).clock().replace(year=2031)
    app.state.clock = lambda: moved
    report = (await client.get("/v1/transparency/ratings")).json()
    assert report["generated_at"] == moved.isoformat()


def test_an_app_not_made_by_the_composition_root_is_refused() -> None:
    with pytest.raises(RuntimeError, match="create_app"):
        state_of(FastAPI(), CoreState)
