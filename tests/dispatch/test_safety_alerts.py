"""SOS alerts end to end over HTTP (docs/safety.md, "SOS"): raised by a party to the trip (or
without a trip), refused to strangers, recorded with both parties, the car and the positions,
and worked by the operators: acknowledge (one of two at once wins), notes, resolve."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coop.audit import AuditEntry
from tests.builders import DOWNTOWN, assigned_trip, make_driver, make_rider, north


def problem(response: Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == type_, body
    return body


async def queue(client: AsyncClient, admin: dict[str, str], **params: str) -> list[dict[str, Any]]:
    listed = await client.get("/v1/safety/alerts", params=params, headers=admin)
    assert listed.status_code == 200, listed.text
    rows: list[dict[str, Any]] = listed.json()
    return rows


async def test_a_riders_sos_reaches_the_queue_and_is_acknowledged_noted_and_resolved(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip = await assigned_trip(app, client, rider, driver, at=north(300))
    where = north(150)
    raised = await client.post(
        f"/v1/trips/{trip['id']}/sos",
        json={**where, "detail": "He locked the doors"},
        headers=rider.headers,
    )
    assert raised.status_code == 201, raised.text
    body = raised.json()
    assert body["status"] == "raised" and body["drill"] is False
    assert body["trip_id"] == trip["id"] and body["position_every_s"] == 2

    [alert] = await queue(client, admin_headers)
    assert alert["id"] == body["id"] and alert["kind"] == "sos"
    assert alert["raised_by"] == "rider" and alert["raised_by_id"] == str(rider.id)
    # The other party and the car, as they were when it was raised.
    assert alert["rider_id"] == str(rider.id) and alert["driver_id"] == str(driver.id)
    assert alert["vehicle_plate"] == "FXK 123"
    assert alert["detail"] == "He locked the doors"
    assert alert["ack_within_s"] == 60 and alert["age_s"] >= 0
    sources = {p["source"]: p for p in alert["positions"]}
    assert sources["raiser"]["lat"] == where["lat"]
    assert abs(sources["car"]["lat"] - north(300)["lat"]) < 1e-6

    acked = await client.post(f"/v1/safety/alerts/{alert['id']}/acknowledge", headers=admin_headers)
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged" and acked.json()["ack_s"] >= 0
    noted = await client.post(
        f"/v1/safety/alerts/{alert['id']}/notes",
        json={"text": "Called the rider; on the line"},
        headers=admin_headers,
    )
    assert noted.status_code == 201, noted.text
    assert [n["text"] for n in noted.json()["notes"]] == ["Called the rider; on the line"]
    resolved = await client.post(
        f"/v1/safety/alerts/{alert['id']}/resolve",
        json={"outcome": "real", "note": "Police met the car"},
        headers=admin_headers,
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved" and resolved.json()["outcome"] == "real"
    assert len(resolved.json()["notes"]) == 2
    assert await queue(client, admin_headers) == []
    [everything] = await queue(client, admin_headers, status="all")
    assert everything["outcome"] == "real"
    # Resolved: once is enough, and the raiser's app is told to stop sending positions.
    problem(
        await client.post(
            f"/v1/safety/alerts/{alert['id']}/resolve",
            json={"outcome": "false_alarm"},
            headers=admin_headers,
        ),
        409,
        "alert_resolved",
    )
    problem(
        await client.post(f"/v1/sos/{alert['id']}/positions", json=DOWNTOWN, headers=rider.headers),
        409,
        "alert_resolved",
    )
    mine = await client.get(f"/v1/sos/{alert['id']}", headers=rider.headers)
    assert mine.json()["status"] == "resolved" and mine.json()["position_every_s"] == 0

    # Every step audited, without a word of what anyone wrote.
    entries = list(
        await session.scalars(
            select(AuditEntry).where(AuditEntry.subject == f"safety_alert:{alert['id']}")
        )
    )
    assert [e.kind for e in entries] == [
        "safety.raised",
        "safety.acknowledged",
        "safety.noted",
        "safety.resolved",
        "safety.noted",
    ]
    assert "locked" not in str([e.content for e in entries])
    assert entries[1].content["within"] is True


async def test_a_stranger_cannot_raise_an_sos_on_someone_elses_trip(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip = await assigned_trip(app, client, rider, driver)
    stranger = await make_rider(client, "Sam Stranger")
    other_driver = await make_driver(client, admin_headers, name="Olga Other")
    path = f"/v1/trips/{trip['id']}/sos"
    problem(await client.post(path, headers=stranger.headers), 403, "not_your_trip")
    problem(await client.post(path, headers=other_driver.headers), 403, "not_your_trip")
    problem(await client.post(path, headers=admin_headers), 403, "forbidden")
    problem(await client.post(path), 401, "unauthorized")
    problem(
        await client.post(f"/v1/trips/{uuid.uuid4()}/sos", headers=rider.headers),
        404,
        "trip_not_found",
    )
    assert await queue(client, admin_headers, status="all") == []
    # The driver of the trip may, with nothing but a tap (no body).
    mine = await client.post(path, headers=driver.headers)
    assert mine.status_code == 201, mine.text
    # A stranger guessing the alert's id learns nothing of it, nor can feed it positions.
    alert_id = mine.json()["id"]
    problem(await client.get(f"/v1/sos/{alert_id}", headers=rider.headers), 404, "alert_not_found")
    problem(
        await client.post(f"/v1/sos/{alert_id}/positions", json=DOWNTOWN, headers=stranger.headers),
        404,
        "alert_not_found",
    )
    # Nor work the queue.
    problem(await client.get("/v1/safety/alerts", headers=driver.headers), 403, "forbidden")
    problem(
        await client.post(f"/v1/safety/alerts/{alert_id}/acknowledge", headers=rider.headers),
        403,
        "forbidden",
    )


async def test_an_sos_without_a_trip_and_a_drill_that_never_reaches_the_queue(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    raised = await client.post("/v1/sos", json=DOWNTOWN, headers=driver.headers)
    assert raised.status_code == 201, raised.text
    assert raised.json()["trip_id"] is None
    rider = await make_rider(client)
    drill = await client.post("/v1/sos", json={"drill": True}, headers=rider.headers)
    assert drill.status_code == 201, drill.text
    # The person sees the button works: recorded and answered at once, as a drill.
    assert drill.json()["drill"] is True and drill.json()["status"] == "resolved"
    assert drill.json()["position_every_s"] == 0
    [only] = await queue(client, admin_headers, status="all")
    assert only["id"] == raised.json()["id"] and only["raised_by"] == "driver"
    assert only["driver_id"] == str(driver.id) and only["rider_id"] is None


async def test_bad_input_is_refused_with_a_clear_problem(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    problem(
        await client.post("/v1/sos", json={"lat": 45.5}, headers=rider.headers), 422, "bad_position"
    )
    problem(
        await client.post("/v1/sos", json={"lat": 95, "lon": 0}, headers=rider.headers),
        422,
        "validation_error",
    )
    problem(
        await client.post("/v1/sos", json={"lat": "45", "lon": "-73"}, headers=rider.headers),
        422,
        "validation_error",
    )
    problem(
        await client.post("/v1/sos", json={"panic": True}, headers=rider.headers),
        422,
        "validation_error",
    )
    raised = await client.post("/v1/sos", headers=rider.headers)
    alert_id = raised.json()["id"]
    problem(
        await client.post(
            f"/v1/safety/alerts/{alert_id}/resolve",
            json={"outcome": "maybe"},
            headers=admin_headers,
        ),
        422,
        "validation_error",
    )
    problem(
        await client.post(
            f"/v1/safety/alerts/{alert_id}/notes", json={"text": "  "}, headers=admin_headers
        ),
        422,
        "validation_error",
    )
    problem(
        await client.post(f"/v1/safety/alerts/{uuid.uuid4()}/acknowledge", headers=admin_headers),
        404,
        "alert_not_found",
    )
    # Nothing half-written by the refusals: one alert, no note.
    [alert] = await queue(client, admin_headers)
    assert alert["notes"] == [] and alert["status"] == "raised"


async def test_two_operators_acknowledging_one_alert_at_once_one_wins(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    for _ in range(5):  # a race is a race only if it is run more than once
        alert_id = (await client.post("/v1/sos", headers=rider.headers)).json()["id"]
        path = f"/v1/safety/alerts/{alert_id}/acknowledge"
        first, second = await asyncio.gather(
            client.post(path, headers=admin_headers), client.post(path, headers=admin_headers)
        )
        statuses = sorted([first.status_code, second.status_code])
        assert statuses == [200, 409], (first.text, second.text)
        loser = first if first.status_code == 409 else second
        assert loser.json()["type"] == "alert_already_acknowledged"
        await client.post(
            f"/v1/safety/alerts/{alert_id}/resolve",
            json={"outcome": "false_alarm"},
            headers=admin_headers,
        )
