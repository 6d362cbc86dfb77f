"""Fixtures of the bargaining tests: a clock the test moves, and committee members."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import AsyncClient

from coop.db import utcnow
from tests.bargaining.strategies import founding_wire
from tests.builders import Account, make_driver


@dataclass
class Clock:
    """What the app believes the time is: `app.state.clock`, moved by the test."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(app: FastAPI) -> Clock:
    clock = Clock(utcnow())
    app.state.clock = clock
    return clock


@pytest_asyncio.fixture
async def committee(client: AsyncClient, admin_headers: dict[str, str]) -> Account:
    return await make_driver(client, admin_headers, name="Chair", committee=True)


def proposal_body(
    clock: Clock,
    *,
    closes_in_s: float = 3600,
    effective_from: datetime | None = None,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A proposal of the founding terms with dotted paths changed (default: per_km 1.10)."""
    terms = founding_wire()
    for path, value in (changes or {"fares.standard.per_km": "1.10"}).items():
        node = terms
        *parents, leaf = path.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return {
        "title": "Raise the per-km rate",
        "rationale": "Fuel costs rose by a tenth this year.",
        "terms": terms,
        "effective_from": effective_from.isoformat() if effective_from else None,
        "voting_closes_at": (clock.now + timedelta(seconds=closes_in_s)).isoformat(),
    }


async def open_proposal(
    client: AsyncClient, committee: Account, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/v1/proposals", json=body, headers=committee.headers)
    assert response.status_code == 201, response.text
    proposal: dict[str, Any] = response.json()
    return proposal


async def vote(client: AsyncClient, member: Account, proposal_id: str, choice: str) -> None:
    response = await client.post(
        f"/v1/proposals/{proposal_id}/ballot", json={"choice": choice}, headers=member.headers
    )
    assert response.status_code == 200, response.text
