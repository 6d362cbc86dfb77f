"""Safety cases for a person (docs/safety.md, "Safety cases"): a rider's
`driver_or_car_does_not_match` cancellation is free whatever the time and opens a case; a driver
flags a rider. Neither acts against anyone: no fee, no status change, nobody blocked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response

from coop.db import utcnow
from tests.builders import DOWNTOWN, Account, assigned_trip, make_driver, make_rider, place_driver


def problem(response: Response, status: int, type_: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["type"] == type_, response.text


async def queue(client: AsyncClient, admin: dict[str, str], **params: str) -> list[dict[str, Any]]:
    listed = await client.get("/v1/safety/alerts", params=params, headers=admin)
    assert listed.status_code == 200, listed.text
    rows: list[dict[str, Any]] = listed.json()
    return rows


async def _arrived_trip_ten_minutes_on(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], name: str
) -> tuple[dict[str, Any], Account, Account]:
    app.state.clock = utcnow
    rider = await make_rider(client, f"Rita {name}")
    driver = await make_driver(client, admin_headers, name=f"Dan {name}")
    trip = await assigned_trip(app, client, rider, driver, at=DOWNTOWN)
    arrived = await client.post(f"/v1/trips/{trip['id']}/arrived", headers=driver.headers)
    assert arrived.status_code == 200, arrived.text
    later = utcnow() + timedelta(minutes=10)  # long past the free period
    app.state.clock = lambda: later
    return trip, rider, driver


async def test_a_mismatch_cancellation_is_free_at_any_time_and_opens_a_case(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    # Without the reason, the same cancellation costs the rider the agreement's fee.
    trip, rider, control = await _arrived_trip_ten_minutes_on(app, client, admin_headers, "Control")
    paid = await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)
    assert paid.status_code == 200 and paid.json()["cancellation_fee"] not in (None, "0.00")
    await place_driver(app, control.id, DOWNTOWN, available=False)

    trip, rider, driver = await _arrived_trip_ten_minutes_on(app, client, admin_headers, "Case")
    cancelled = await client.post(
        f"/v1/trips/{trip['id']}/cancel",
        json={"reason": "driver_or_car_does_not_match"},
        headers=rider.headers,
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancellation_fee"] == "0.00"
    [case] = await queue(client, admin_headers, kind="cases")
    assert case["kind"] == "driver_or_car_does_not_match" and case["trip_id"] == trip["id"]
    assert case["raised_by"] == "rider" and case["driver_id"] == str(driver.id)
    assert case["vehicle_plate"] == "FXK 123"
    # Not an alert: the /ops alarm and the alerts' list are for emergencies.
    assert await queue(client, admin_headers, kind="alerts") == []
    # Same life as an alert; and nothing happened to the driver by itself.
    acked = await client.post(f"/v1/safety/alerts/{case['id']}/acknowledge", headers=admin_headers)
    assert acked.status_code == 200, acked.text
    resolved = await client.post(
        f"/v1/safety/alerts/{case['id']}/resolve",
        json={"outcome": "false_alarm", "note": "The driver had changed cars; photo updated"},
        headers=admin_headers,
    )
    assert resolved.status_code == 200, resolved.text
    me = await client.get("/v1/drivers/me", headers=driver.headers)
    assert me.status_code == 200 and me.json()["status"] == "active"


async def test_a_driver_flags_a_rider_for_a_person_to_review(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip = await assigned_trip(app, client, rider, driver)
    path = f"/v1/trips/{trip['id']}/flag"
    flagged = await client.post(
        path, json={"reason": "harassment", "note": "Repeated remarks"}, headers=driver.headers
    )
    assert flagged.status_code == 201, flagged.text
    [case] = await queue(client, admin_headers, kind="cases")
    assert case["id"] == flagged.json()["id"] and case["kind"] == "rider_flag"
    assert case["reason"] == "harassment" and case["detail"] == "Repeated remarks"
    assert case["rider_id"] == str(rider.id) and case["raised_by"] == "driver"
    # Bad input and strangers.
    problem(
        await client.post(path, json={"reason": "smells"}, headers=driver.headers),
        422,
        "validation_error",
    )
    problem(
        await client.post(path, json={"reason": "other"}, headers=rider.headers), 403, "forbidden"
    )
    other = await make_driver(client, admin_headers, name="Olga Other")
    problem(
        await client.post(path, json={"reason": "other"}, headers=other.headers),
        403,
        "not_your_trip",
    )
    # Nobody is blocked: the flagged rider asks for a ride again at once, once this one ends.
    await client.post(f"/v1/trips/{trip['id']}/cancel", headers=driver.headers)
    again = await client.post(
        "/v1/quotes",
        json={"pickup": DOWNTOWN, "dropoff": {"lat": 45.52, "lon": -73.58}},
        headers=rider.headers,
    )
    assert again.status_code == 200, again.text
