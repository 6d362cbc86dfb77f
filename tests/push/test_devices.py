"""Devices over HTTP: the key, registering, listing, removing, the limits, and who may."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from coop.push.service import MAX_DEVICES_PER_ACCOUNT
from tests.builders import make_driver, make_rider
from tests.push.push_service import PushService


async def test_the_key_is_a_p256_point_apps_subscribe_with(client: AsyncClient) -> None:
    response = await client.get("/v1/push/key")
    assert response.status_code == 200
    body = response.json()
    from tests.push.push_service import unb64url

    raw = unb64url(body["public_key"])
    assert len(raw) == 65 and raw[0] == 4
    assert "offer" in body["kinds"]


async def test_a_driver_registers_lists_and_removes_a_device(
    client: AsyncClient, admin_headers: dict[str, str], pushes: PushService
) -> None:
    driver = await make_driver(client, admin_headers)
    phone = pushes.subscribe()
    created = await client.post(
        "/v1/devices", json=phone.device(platform="android", language="en"), headers=driver.headers
    )
    assert created.status_code == 201, created.text
    device = created.json()
    assert device["platform"] == "android" and device["current_token"] is True
    assert "endpoint" not in device and "keys" not in device  # capabilities are never shown
    # The same subscription again replaces it (a browser that subscribes anew).
    again = await client.post("/v1/devices", json=phone.device(), headers=driver.headers)
    assert again.status_code == 201 and again.json()["id"] == device["id"]
    listed = await client.get("/v1/devices", headers=driver.headers)
    assert [row["id"] for row in listed.json()] == [device["id"]]
    removed = await client.delete(f"/v1/devices/{device['id']}", headers=driver.headers)
    assert removed.status_code == 204
    assert (await client.get("/v1/devices", headers=driver.headers)).json() == []


async def test_a_stranger_cannot_see_or_remove_anothers_device(
    client: AsyncClient, admin_headers: dict[str, str], pushes: PushService
) -> None:
    driver = await make_driver(client, admin_headers)
    rider = await make_rider(client)
    device = (
        await client.post("/v1/devices", json=pushes.subscribe().device(), headers=driver.headers)
    ).json()
    assert (await client.get("/v1/devices", headers=rider.headers)).json() == []
    refused = await client.delete(f"/v1/devices/{device['id']}", headers=rider.headers)
    assert refused.status_code == 404
    assert refused.json()["type"].endswith("not_found")
    assert len((await client.get("/v1/devices", headers=driver.headers)).json()) == 1
    anonymous = await client.post("/v1/devices", json=pushes.subscribe().device())
    assert anonymous.status_code == 401
    bootstrap = await client.post(
        "/v1/devices", json=pushes.subscribe().device(), headers=admin_headers
    )
    assert bootstrap.status_code == 403


def _with(device: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**device, **changes}


async def test_bad_subscriptions_are_refused_with_a_reason(
    app: FastAPI, client: AsyncClient, pushes: PushService
) -> None:
    rider = await make_rider(client)
    good = pushes.subscribe().device()
    app.state.settings = app.state.settings.model_copy(update={"push_allow_loopback": False})
    cases = {
        "http://push.example.com/x": "bad_push_endpoint",
        "https://10.0.0.8/x": "bad_push_endpoint",
        "https://push.example.com:6379/x": "bad_push_endpoint",
        "https://localhost/x": "bad_push_endpoint",
        "https://user:pw@push.example.com/x": "bad_push_endpoint",
        "https://internal/x": "bad_push_endpoint",
        good["endpoint"]: "bad_push_endpoint",  # loopback, outside the tests
    }
    for endpoint, problem in cases.items():
        response = await client.post(
            "/v1/devices", json=_with(good, endpoint=endpoint), headers=rider.headers
        )
        assert response.status_code == 422, endpoint
        assert response.json()["type"].endswith(problem), response.text
    short_key = _with(good, keys={"p256dh": good["keys"]["p256dh"][:-4], "auth": "x" * 22})
    for body in (
        short_key,
        _with(good, keys={**good["keys"], "auth": "AAAA"}),
        _with(good, platform="blackberry"),
        _with(good, extra=1),
    ):
        response = await client.post("/v1/devices", json=body, headers=rider.headers)
        assert response.status_code == 422, body
    fine = await client.post(
        "/v1/devices",
        json=_with(good, endpoint="https://updates.push.example.com/wpush/v2/abc"),
        headers=rider.headers,
    )
    assert fine.status_code == 201, fine.text


async def test_an_account_has_a_small_number_of_devices(
    client: AsyncClient, pushes: PushService
) -> None:
    rider = await make_rider(client)
    for _ in range(MAX_DEVICES_PER_ACCOUNT):
        response = await client.post(
            "/v1/devices", json=pushes.subscribe().device(), headers=rider.headers
        )
        assert response.status_code == 201
    over = await client.post("/v1/devices", json=pushes.subscribe().device(), headers=rider.headers)
    assert over.status_code == 409
    assert over.json()["type"].endswith("too_many_devices")


async def test_revoking_a_token_or_signing_out_everywhere_removes_its_devices(
    client: AsyncClient, pushes: PushService
) -> None:
    rider = await make_rider(client)
    minted = await client.post("/v1/tokens", headers=rider.headers)
    second = {"Authorization": f"Bearer {minted.json()['token']}"}
    await client.post("/v1/devices", json=pushes.subscribe().device(), headers=rider.headers)
    await client.post("/v1/devices", json=pushes.subscribe().device(), headers=second)
    assert len((await client.get("/v1/devices", headers=rider.headers)).json()) == 2
    # The minted token revoked: its device goes, the other stays.
    assert (await client.delete("/v1/tokens/current", headers=second)).status_code == 204
    left = (await client.get("/v1/devices", headers=rider.headers)).json()
    assert len(left) == 1 and left[0]["current_token"] is True
    reset = await client.delete("/v1/tokens", headers=rider.headers)
    assert reset.status_code == 200
    fresh = {"Authorization": f"Bearer {reset.json()['replacement']['token']}"}
    assert (await client.get("/v1/devices", headers=fresh)).json() == []


async def test_preferences_choose_the_kinds_pushed(client: AsyncClient) -> None:
    rider = await make_rider(client)
    everything = await client.get("/v1/push/preferences", headers=rider.headers)
    assert everything.json()["kinds"] == everything.json()["available"]
    chosen = await client.put(
        "/v1/push/preferences", json={"kinds": ["trip", "offer"]}, headers=rider.headers
    )
    assert chosen.status_code == 200 and chosen.json()["kinds"] == ["offer", "trip"]
    bad = await client.put("/v1/push/preferences", json={"kinds": ["spam"]}, headers=rider.headers)
    assert bad.status_code == 422
    assert (await client.get("/v1/push/preferences", headers=rider.headers)).json()["kinds"] == [
        "offer",
        "trip",
    ]
