"""/asyncapi.json: served, AsyncAPI 3.0, every WebSocket message of docs/protocol.md with a JSON
Schema payload, and the payloads agree with what the service really sends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from pydantic import BaseModel
from websockets.asyncio.client import ClientConnection, connect

from server.asyncapi import MESSAGES, document
from server.simulator.client import ws_url
from tests.builders import LONGUEUIL, live_server, make_driver

# Protocol v1's messages, and the service's extensions (docs/protocol.md): `hello` first
# on every socket, the echo of `availability`, and `ping`/`pong` either way.
DRIVER_SENDS = {"availability", "location", "ping", "pong"}
DRIVER_GETS = {
    "hello", "availability", "offer", "offer_withdrawn", "trip", "ping", "pong", "error",
    "appeal_decided", "qualification",
}  # fmt: skip
RIDER_SENDS = {"ping", "pong"}
RIDER_GETS = {"hello", "trip", "driver_location", "ping", "pong", "error"}
# Share my trip (docs/safety.md): the maker of a link, rider or driver, is told it was opened.
DRIVER_GETS |= {"share_opened"}
RIDER_GETS |= {"share_opened", "trip_shared"}
# The ride check (docs/safety.md), both ways on both sockets.
DRIVER_SENDS |= {"safety_check_answer"}
RIDER_SENDS |= {"safety_check_answer"}
DRIVER_GETS |= {"safety_check"}
RIDER_GETS |= {"safety_check"}
# Safety (docs/safety.md): both sockets raise an SOS, send positions and hear its status.
DRIVER_SENDS |= {"sos", "sos_position"}
RIDER_SENDS |= {"sos", "sos_position"}
DRIVER_GETS |= {"sos_status"}
RIDER_GETS |= {"sos_status"}
# A driver's own auto-share policy hands them their link at assignment too.
DRIVER_GETS |= {"trip_shared"}


def _resolve(document_: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document_
    for part in ref[2:].split("/"):
        assert part in node, f"{ref} does not resolve (no {part!r})"
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


async def test_the_document_is_served_as_json(client: AsyncClient) -> None:
    response = await client.get("/asyncapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    served = json.loads(response.text)
    assert served["asyncapi"] == "3.0.0"
    assert served["info"]["version"] == "1"
    assert served["servers"]["this"] == {
        "host": "test",
        "protocol": "ws",
        "description": "The service that served this document",
        "security": [
            {"$ref": "#/components/securitySchemes/bearer"},
            {"$ref": "#/components/securitySchemes/queryToken"},
        ],
    }
    assert served["channels"]["driver"]["address"] == "/v1/ws/driver"
    assert served["channels"]["rider"]["address"] == "/v1/ws/rider"


async def test_every_message_of_the_protocol_is_listed_on_its_channel(client: AsyncClient) -> None:
    served = (await client.get("/asyncapi.json")).json()
    assert set(served["channels"]["driver"]["messages"]) == DRIVER_SENDS | DRIVER_GETS
    assert set(served["channels"]["rider"]["messages"]) == RIDER_SENDS | RIDER_GETS
    actions: list[tuple[str, str, str]] = []
    for operation in served["operations"].values():
        channel = operation["channel"]["$ref"].rsplit("/", 1)[-1]
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"#/channels/{channel}/messages/")
            actions.append((channel, message["$ref"].rsplit("/", 1)[-1], operation["action"]))
    # The document speaks for the service: it receives what clients send and sends the rest.
    expected = (
        {("driver", name, "receive") for name in DRIVER_SENDS}
        | {("driver", name, "send") for name in DRIVER_GETS}
        | {("rider", name, "receive") for name in RIDER_SENDS}
        | {("rider", name, "send") for name in RIDER_GETS}
    )
    assert sorted(actions) == sorted(expected)


def test_every_reference_resolves() -> None:
    doc = document()
    refs = _refs(doc)
    assert len(refs) > 40
    for ref in refs:
        _resolve(doc, ref)


def test_each_payload_is_a_json_schema_fixing_its_type() -> None:
    doc = document()
    for name, message in doc["components"]["messages"].items():
        schema = _resolve(doc, message["payload"]["$ref"])
        assert schema["type"] == "object"
        assert "type" in schema["required"]
        assert schema["properties"]["type"]["const"] == name
        assert message["contentType"] == "application/json"


def test_the_examples_are_valid_payloads() -> None:
    doc = document()
    for message in MESSAGES:
        message.model.model_validate(message.example)
        assert doc["components"]["messages"][message.name]["examples"][0]["payload"] == (
            message.example
        )


def test_the_trip_payload_is_the_http_trip_object() -> None:
    doc = document()
    trip = _resolve(doc, "#/components/schemas/TripFrame")["properties"]["trip"]
    assert trip == {"$ref": "#/components/schemas/TripOut"}
    fields = set(doc["components"]["schemas"]["TripOut"]["properties"])
    protocol_fields = {
        "id", "status", "rider_id", "driver_id", "pickup", "dropoff", "wheelchair_accessible",
        "requested_at", "assigned_at", "arrived_at", "started_at", "ended_at", "quote", "fare",
        "cancel_reason",
    }  # fmt: skip
    assert protocol_fields <= fields


def payload_model(name: str) -> type[BaseModel]:
    return next(message.model for message in MESSAGES if message.name == name)


async def _next_of(
    websocket: ClientConnection, kind: str, timeout_s: float = 10.0
) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            frame: dict[str, Any] = json.loads(await websocket.recv())
            if frame["type"] == kind:
                return frame


async def test_error_frames_on_a_real_socket_match_the_document(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    async with live_server(app) as base_url:
        async with connect(
            ws_url(base_url, "/v1/ws/driver"), additional_headers=driver.headers
        ) as ws:
            await ws.send("not json at all")
            bad = await _next_of(ws, "error")
            payload_model("error").model_validate(bad)
            assert bad["code"] == "bad_message"
            await ws.send(json.dumps({"type": "location", **LONGUEUIL}))
            outside = await _next_of(ws, "error")
            payload_model("error").model_validate(outside)
            assert outside["code"] == "out_of_service_area"
