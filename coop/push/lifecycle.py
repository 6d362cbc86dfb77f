"""Starts the push sender with the app and stops it before the pools close."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from coop.push import sender as push_sender
from coop.push.sender import PushSender
from coop.push.state import PushState
from coop.state import state_of


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[PushSender]:
    state = state_of(app, PushState)
    settings = state.settings
    sender = PushSender(
        state.sessionmaker,
        state.vapid,
        queue_size=settings.push_queue_size,
        concurrency=settings.push_concurrency,
        tasks=state.tasks,
        registry=state.metrics.registry,
        clock=lambda: state.clock(),
    )
    state.push = sender
    push_sender.install(state.redis, sender)
    sender.start()
    try:
        yield sender
    finally:
        push_sender.uninstall(state.redis)
        await sender.stop()
