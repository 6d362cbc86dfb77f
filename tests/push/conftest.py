"""An app that accepts the loopback push service's endpoints, and that service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from coop.settings import Settings
from server.app import create_app
from tests.push.push_service import PushService, push_service


@pytest_asyncio.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update={"push_allow_loopback": True}))
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
        yield http


@pytest_asyncio.fixture
async def pushes(app: FastAPI) -> AsyncIterator[PushService]:
    async with push_service(app.state.vapid.public_key) as service:
        yield service
