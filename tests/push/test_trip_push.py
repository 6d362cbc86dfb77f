"""Trip changes pushed to a rider whose socket is gone: the driver's arrival, and not the
changes the rider made or need not act on."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from tests.builders import assigned_trip, make_driver, make_rider
from tests.push.push_service import PushService


async def test_a_rider_without_a_socket_is_pushed_the_drivers_arrival(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], pushes: PushService
) -> None:
    rider = await make_rider(client)
    phone = pushes.subscribe()
    registered = await client.post(
        "/v1/devices", json=phone.device(language="en"), headers=rider.headers
    )
    assert registered.status_code == 201
    driver = await make_driver(client, admin_headers)
    trip = await assigned_trip(app, client, rider, driver)
    await app.state.push.idle()
    assert phone.received == []  # assigned: shown when the app next opens
    arrived = await client.post(f"/v1/trips/{trip['id']}/arrived", headers=driver.headers)
    assert arrived.status_code == 200, arrived.text
    pushed = await phone.next(timeout_s=3.0)
    assert pushed.payload == {"kind": "trip", "trip_id": trip["id"], "status": "arrived"}
    assert pushed.urgency == "normal"
    # A rider who turned trip pushes off is not pushed the next change.
    await client.put("/v1/push/preferences", json={"kinds": ["vote"]}, headers=rider.headers)
    cancelled = await client.post(
        f"/v1/trips/{trip['id']}/cancel", json={"reason": "no show"}, headers=driver.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    await app.state.push.idle()
    assert len(phone.received) == 1
    assert pushes.refused == []
