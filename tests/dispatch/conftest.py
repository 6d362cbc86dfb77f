"""What the dispatch tests share beyond tests/conftest.py: the app served on a real uvicorn
server, for tests that speak the real protocol over sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fastapi import FastAPI

from coop.settings import Settings
from server.app import create_app
from tests.builders import live_server


@pytest_asyncio.fixture
async def served_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, str]]:
    """The app and its base URL on a live server."""
    app = create_app(settings)
    async with live_server(app) as base_url:
        yield app, base_url


@pytest.fixture(params=["requests", "drivers"])
def search_side(request: pytest.FixtureRequest, app: FastAPI) -> str:
    """Runs a test with the K-nearest search from each side: the rules hold both ways."""
    side: str = request.param
    app.state.matcher.search_side = side
    return side
