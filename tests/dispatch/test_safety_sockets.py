"""SOS over the sockets and under faults (docs/protocol.md, "SOS"): a `sos` frame raises the
alert and is answered with `sos_status`; `sos_position` frames follow it; the raiser hears the
operators' acknowledge and resolution; a bad frame is an error frame and the socket stays open.
An SOS raised while Redis restarts is a database row first, and is not lost."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from httpx import AsyncClient
from sqlalchemy import func, select

from coop.settings import Settings
from dispatch.safety.models import SafetyAlertPosition
from server.app import create_app
from tests.builders import (
    DOWNTOWN,
    accepted_over_socket,
    live_server,
    make_driver,
    make_rider,
    north,
    serve,
    socket,
)
from tests.servers import ThrowawayRedis


async def test_a_rider_raises_an_sos_on_the_socket_and_hears_it_answered(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    async with serve(settings) as served:
        http = served.http
        rider = await make_rider(http)
        driver = await make_driver(http, admin_headers)
        async with (
            socket(served.base_url, "/v1/ws/driver", driver.token) as driver_ws,
            socket(served.base_url, "/v1/ws/rider", rider.token) as rider_ws,
        ):
            trip = await accepted_over_socket(
                served.app, http, driver_ws, rider, driver, at=north(400)
            )
            await rider_ws.send({"type": "sos", **north(100)})
            raised = await rider_ws.next("sos_status")
            assert raised["status"] == "raised" and raised["trip_id"] == trip["id"]
            assert raised["position_every_s"] == 2 and raised["drill"] is False
            alert_id = raised["id"]
            # Positions every 2 s; closer than 500 ms apart, the later is not kept.
            for step in range(3):
                await asyncio.sleep(0.6)
                await rider_ws.send(
                    {"type": "sos_position", "alert_id": alert_id, **north(100 + step * 10)}
                )
            await asyncio.sleep(0.6)
            for _ in range(2):  # a burst: one kept
                await rider_ws.send({"type": "sos_position", "alert_id": alert_id, **north(150)})
            # A bad frame: an error frame naming why, and the socket still answers.
            await rider_ws.send({"type": "sos_position", "alert_id": str(uuid.uuid4()), **DOWNTOWN})
            assert (await rider_ws.next("error"))["code"] == "alert_not_found"
            await rider_ws.send({"type": "sos", "lat": 45.5})
            assert (await rider_ws.next("error"))["code"] == "bad_message"
            await rider_ws.send({"type": "sos", "detail": "nul \u0000 byte"})
            assert (await rider_ws.next("error"))["code"] == "bad_message"
            await rider_ws.send({"type": "ping"})
            await rider_ws.next("pong")

            async with served.app.state.sessionmaker() as session:
                stored = await session.scalar(
                    select(func.count()).where(
                        SafetyAlertPosition.alert_id == uuid.UUID(alert_id),
                        SafetyAlertPosition.source == "raiser",
                    )
                )
            assert stored == 5  # the sos frame's, three 600 ms apart, one of the burst

            acked = await http.post(
                f"/v1/safety/alerts/{alert_id}/acknowledge", headers=admin_headers
            )
            assert acked.status_code == 200, acked.text
            assert (await rider_ws.next("sos_status"))["status"] == "acknowledged"
            await http.post(
                f"/v1/safety/alerts/{alert_id}/resolve",
                json={"outcome": "false_alarm"},
                headers=admin_headers,
            )
            done = await rider_ws.next("sos_status")
            assert done["status"] == "resolved" and done["position_every_s"] == 0
            await rider_ws.send({"type": "sos_position", "alert_id": alert_id, **DOWNTOWN})
            assert (await rider_ws.next("error"))["code"] == "alert_resolved"

            # A driver may too, and a stranger's trip is refused on the socket as over HTTP.
            other = await make_rider(http, "Sam Stranger")
            async with socket(served.base_url, "/v1/ws/rider", other.token) as other_ws:
                await other_ws.send({"type": "sos", "trip_id": trip["id"]})
                assert (await other_ws.next("error"))["code"] == "not_your_trip"
            await driver_ws.send({"type": "sos", "drill": True})
            drill = await driver_ws.next("sos_status")
            assert drill["drill"] is True and drill["status"] == "resolved"


async def test_an_sos_raised_while_redis_restarts_is_not_lost(
    settings: Settings, admin_headers: dict[str, str], short_tmp: Path
) -> None:
    redis = ThrowawayRedis(short_tmp)
    await redis.start()
    app = create_app(settings.model_copy(update={"redis_url": redis.url}))
    try:
        async with live_server(app) as base_url, AsyncClient(base_url=base_url) as http:
            rider = await make_rider(http)
            redis.stop()
            raised = await http.post("/v1/sos", json=DOWNTOWN, headers=rider.headers)
            assert raised.status_code == 201, raised.text
            await redis.start()
            listed = await http.get("/v1/safety/alerts", headers=admin_headers)
            assert [a["id"] for a in listed.json()] == [raised.json()["id"]]
            assert listed.json()[0]["positions"][0]["lat"] == DOWNTOWN["lat"]
    finally:
        redis.stop()
