"""An SOS whose raiser has no socket open: each change of its status reaches their phone by push
(docs/push.md); a drill never does."""

from __future__ import annotations

from httpx import AsyncClient

from tests.builders import make_rider
from tests.push.push_service import PushService


async def test_the_raiser_without_a_socket_is_pushed_the_acknowledgement(
    client: AsyncClient, admin_headers: dict[str, str], pushes: PushService
) -> None:
    rider = await make_rider(client)
    phone = pushes.subscribe()
    registered = await client.post("/v1/devices", json=phone.device(), headers=rider.headers)
    assert registered.status_code == 201
    drill = await client.post("/v1/sos", json={"drill": True}, headers=rider.headers)
    assert drill.status_code == 201, drill.text
    raised = await client.post(
        "/v1/sos", json={"lat": 45.5017, "lon": -73.5673}, headers=rider.headers
    )
    assert raised.status_code == 201, raised.text
    alert_id = raised.json()["id"]
    first = await phone.next(timeout_s=3.0)
    assert first.payload == {"kind": "safety", "alert_id": alert_id, "status": "raised"}
    acknowledged = await client.post(
        f"/v1/safety/alerts/{alert_id}/acknowledge", headers=admin_headers
    )
    assert acknowledged.status_code == 200, acknowledged.text
    pushed = await phone.next(timeout_s=3.0)
    assert pushed.payload == {"kind": "safety", "alert_id": alert_id, "status": "acknowledged"}
    assert pushed.urgency == "high"
    assert pushes.refused == []
