"""Reputation's part of the application state (`coop.state`): what the composition root
hands reputation, which never imports the packages that provide it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from coop.state import CoreState
from reputation.policy import PolicySource

Audience = Literal["driver", "rider"]
# Called with (session, the caller's id): one package's records of the caller, for the export.
ExportSection = Callable[[AsyncSession, uuid.UUID], Awaitable[Any]]


class ReputationState(CoreState):
    # The reputation terms of the agreement in force at a given moment.
    reputation_policy_source: PolicySource
    # The HMAC key of the raters' pseudonyms (from COOP_PSEUDONYM_KEY, never the admin token).
    pseudonym_key: bytes
    # Other packages' sections of the personal-data exports, by audience and name.
    export_sections: dict[Audience, dict[str, ExportSection]]
