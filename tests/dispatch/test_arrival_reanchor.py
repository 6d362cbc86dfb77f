"""Issue 23, finding 3: a re-anchor is no approach.

A driver 5 km from the pickup reported the pickup once a second for 12 s: the rejected positions
agreed with each other for 10 s, so they became the driver's new start, and `arrived` was
accepted (then a fare for 0 m, or the rider's cancellation fee). A position believed that way
says where the phone claims to be, not that the driver drove there: over real sockets against
the real service, `arrived` is now refused and the rider cancels free.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.builders import (
    DOWNTOWN,
    Collector,
    accepted_over_socket,
    make_driver,
    make_rider,
    socket,
)

# About 4.4 km north-west of DOWNTOWN: within the founding 6 km pickup radius.
FAR = {"lat": 45.5300, "lon": -73.6050}


async def test_a_driver_re_anchored_at_the_pickup_cannot_arrive_nor_earn_the_fee(
    served_app: tuple[FastAPI, str], admin_headers: dict[str, str], session: AsyncSession
) -> None:
    app, base_url = served_app
    async with AsyncClient(base_url=base_url) as client:
        rider = await make_rider(client)
        driver = await make_driver(client, admin_headers)
        async with socket(base_url, "/v1/ws/driver", driver.token) as driver_socket:
            trip = await accepted_over_socket(
                app, client, driver_socket, rider, driver, at=FAR, pickup=DOWNTOWN
            )
            collector = Collector(driver_socket)
            try:
                # The attack: the pickup, once a second for 12 s, from 4.4 km away.
                loop = asyncio.get_running_loop()
                began = loop.time()
                for i in range(12):
                    await driver_socket.send({"type": "location", **DOWNTOWN})
                    await asyncio.sleep(max(0.0, began + 1.0 * (i + 1) - loop.time()))
                await driver_socket.send({"type": "ping"})
                await collector.wait_for("pong")
            finally:
                await collector.stop()
            codes = collector.codes()
            # Rejected for 10 s, then believed as a new start: the map shows the driver there.
            assert codes == ["implausible_position"] * codes.count("implausible_position")
            assert 9 <= len(codes) <= 11
            await app.state.locations.flush()
            where = (
                await session.execute(
                    text(
                        "SELECT ST_Y(position::geometry), anchored_at "
                        "FROM location_driver_position WHERE driver_id = :id"
                    ),
                    {"id": driver.id},
                )
            ).one()
            await session.commit()
            assert abs(where[0] - DOWNTOWN["lat"]) < 1e-6 and where[1] is not None

            arrived = await client.post(f"/v1/trips/{trip['id']}/arrived", headers=driver.headers)
            assert arrived.status_code == 409, arrived.text
            problem = arrived.json()
            assert problem["type"] == "not_at_pickup"
            assert problem["distance_m"] < problem["arrival_radius_m"]
            assert problem["reanchored_at"]
            assert "new start" in problem["detail"]
            # So no `start` either: the meter never runs on this trip.
            started = await client.post(f"/v1/trips/{trip['id']}/start", headers=driver.headers)
            assert started.status_code == 409, started.text

            # After the free period the rider cancels: the driver was not seen approaching.
            await session.execute(
                text(
                    "UPDATE trip SET assigned_at = assigned_at - interval '180 seconds' "
                    "WHERE id = :id"
                ),
                {"id": trip["id"]},
            )
            await session.commit()
            cancelled = await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)
            assert cancelled.status_code == 200, cancelled.text
            body = cancelled.json()
            assert body["cancellation_fee"] == "0.00"
            assert "new start" in body["cancellation_fee_reason"]


async def test_a_driver_who_drives_to_the_pickup_still_arrives(
    served_app: tuple[FastAPI, str], admin_headers: dict[str, str]
) -> None:
    """The first fix of a new socket is believed as a start too, before any offer: it does not
    stand in the way of an approach seen from there."""
    app, base_url = served_app
    async with AsyncClient(base_url=base_url) as client:
        rider = await make_rider(client)
        driver = await make_driver(client, admin_headers)
        near = {"lat": DOWNTOWN["lat"] + 0.003, "lon": DOWNTOWN["lon"]}  # 333 m north
        async with socket(base_url, "/v1/ws/driver", driver.token) as driver_socket:
            trip = await accepted_over_socket(
                app, client, driver_socket, rider, driver, at=near, pickup=DOWNTOWN
            )
            await asyncio.sleep(2.5)  # 133 m in 2.5 s: believable
            await driver_socket.send(
                {"type": "location", "lat": DOWNTOWN["lat"] + 0.0018, "lon": DOWNTOWN["lon"]}
            )
            await driver_socket.send({"type": "ping"})
            await driver_socket.next("pong")
            await app.state.locations.flush()
            arrived = await client.post(f"/v1/trips/{trip['id']}/arrived", headers=driver.headers)
            assert arrived.status_code == 200, arrived.text
