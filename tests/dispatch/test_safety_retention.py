"""Alerts are kept as long as the data register says, and no longer: a real incident two years
after it was resolved, a false alarm or a drill 90 days; an open one always."""

from __future__ import annotations

from datetime import timedelta

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coop.db import utcnow
from dispatch.safety.models import SafetyAlert
from dispatch.safety.retention import purge
from tests.builders import DOWNTOWN, make_rider


async def test_resolved_alerts_are_removed_after_their_time_and_open_ones_never(
    client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    rider = await make_rider(client)
    ids = {}
    for outcome in ("real", "false_alarm", None):
        raised = await client.post("/v1/sos", json=DOWNTOWN, headers=rider.headers)
        ids[outcome] = raised.json()["id"]
        if outcome is not None:
            resolved = await client.post(
                f"/v1/safety/alerts/{ids[outcome]}/resolve",
                json={"outcome": outcome},
                headers=admin_headers,
            )
            assert resolved.status_code == 200, resolved.text
    ids["drill"] = (
        await client.post("/v1/sos", json={"drill": True}, headers=rider.headers)
    ).json()["id"]

    async def kept() -> set[str]:
        return {str(i) for i in await session.scalars(select(SafetyAlert.id))}

    assert await purge(session, now=utcnow() + timedelta(days=89)) == 0
    assert await purge(session, now=utcnow() + timedelta(days=91)) == 2
    await session.commit()
    assert await kept() == {ids["real"], ids[None]}
    assert await purge(session, now=utcnow() + timedelta(days=731)) == 1
    await session.commit()
    assert await kept() == {ids[None]}
