"""Web Push's part of the application state (`coop.state`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coop.state import CoreState

if TYPE_CHECKING:
    from coop.push.sender import PushSender
    from coop.push.vapid import VapidKey


class PushState(CoreState):
    # Loaded when the app is made (production refuses to start without it).
    vapid: VapidKey
    # Started and stopped by the lifespan (coop.push.lifecycle).
    push: PushSender
