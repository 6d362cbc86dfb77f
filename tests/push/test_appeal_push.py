"""An appeal decided while the appellant has no socket open reaches their phone by push."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.builders import make_driver, make_rider
from tests.push.push_service import PushService
from tests.reputation.helpers import rated_trip


async def test_the_appellant_without_a_socket_is_pushed_the_decision(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    pushes: PushService,
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    reviewer = await make_driver(client, admin_headers, name="Rev One", reviewer=True)
    phone = pushes.subscribe()
    registered = await client.post("/v1/devices", json=phone.device(), headers=driver.headers)
    assert registered.status_code == 201
    rating = await rated_trip(client, sessionmaker, rider, driver, 2, comment="Took forever")
    filed = await client.post(
        f"/v1/ratings/{rating['id']}/appeal",
        json={"statement": "The bridge was closed that evening"},
        headers=driver.headers,
    )
    assert filed.status_code == 201, filed.text
    decided = await client.post(
        f"/v1/appeals/{filed.json()['id']}/decision",
        json={"outcome": "rating_removed", "reason": "The detour was signposted"},
        headers=reviewer.headers,
    )
    assert decided.status_code == 200, decided.text
    pushed = await phone.next(timeout_s=3.0)
    assert pushed.payload == {
        "kind": "appeal",
        "appeal_id": filed.json()["id"],
        "outcome": "rating_removed",
    }
    assert pushed.urgency == "normal" and pushed.ttl_s > 24 * 3600
    assert pushes.refused == []
