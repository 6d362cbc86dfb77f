"""`/asyncapi.json`: every WebSocket message of docs/protocol.md as an AsyncAPI 3.0 document.

The payload schemas are generated from the frame models the service sends and parses
(`dispatch.realtime.frames`, and `reputation.schemas.AppealDecidedFrame`): one model per message
`type`, the same objects that write the frames on the wire, so the document cannot drift from
what is sent. The trip object and the appeal are the models the HTTP API answers with. The
examples are checked against the models by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from dispatch.locations.frames import DriverLocationFrame
from dispatch.realtime.frames import (
    AvailabilityFrame,
    ErrorFrame,
    HelloFrame,
    LocationFrame,
    PingFrame,
    PongFrame,
)
from dispatch.safety.frames import SosFrame, SosPositionFrame, SosStatusFrame
from dispatch.safety.ridecheck_frames import SafetyCheckAnswerFrame, SafetyCheckFrame
from dispatch.safety.share_views import ShareOpenedFrame, TripSharedFrame
from dispatch.trips.frames import OfferFrame, OfferWithdrawnFrame, TripFrame
from drivers.frames import QualificationFrame
from reputation.schemas import AppealDecidedFrame

ASYNCAPI_VERSION = "3.0.0"
SCHEMA_REF = "#/components/schemas/{model}"

Direction = Literal["client_to_server", "server_to_client"]

_POSITION = {"lat": 45.5017, "lon": -73.5673}
_TRIP_ID = "6f1c2b9e-8a55-4d0b-9a3e-2f7f0c1d4e5a"
_OFFER_ID = "0b7e4c1a-3d2f-4e8b-9c6a-5f1e2d3c4b5a"


# --- the document ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One message `type`, the model of its payload, and which channels carry it which way."""

    name: str
    model: type[BaseModel]
    summary: str
    channels: tuple[tuple[str, Direction], ...]
    example: dict[str, Any]

    @property
    def description(self) -> str:
        return (self.model.__doc__ or self.summary).strip()


DRIVER = "driver"
RIDER = "rider"
CHANNELS: dict[str, dict[str, str]] = {
    DRIVER: {
        "address": "/v1/ws/driver",
        "title": "Driver socket",
        "description": "A driver's connection: positions and availability in; offers, trip "
        "changes and appeal decisions out. Authenticate with a driver token. Every frame the "
        "service sends also carries `seq`, the socket's sequence number (1 for the hello, then "
        "one more per frame): a gap means frames were missed, so reconnect for the current state.",
    },
    RIDER: {
        "address": "/v1/ws/rider",
        "title": "Rider socket",
        "description": "A rider's connection: trip changes and the driver's position out. "
        "Authenticate with a rider token. Every frame the service sends also carries `seq`, "
        "the socket's sequence number (1 for the hello, then one more per frame).",
    },
}

_TRIP_EXAMPLE = {
    "id": _TRIP_ID,
    "status": "assigned",
    "rider_id": "2d4f6a8c-1b3e-4c5d-8e7f-9a0b1c2d3e4f",
    "driver_id": "7a9c1e3f-5b7d-4f9a-8c1e-3f5b7d9fa1c3",
    "pickup": _POSITION,
    "dropoff": {"lat": 45.5225, "lon": -73.58},
    "wheelchair_accessible": False,
    "requested_at": "2026-11-22T14:00:00Z",
    "assigned_at": "2026-11-22T14:00:04Z",
    "arrived_at": None,
    "started_at": None,
    "ended_at": None,
    "quote": {
        "total": "14.20",
        "currency": "CAD",
        "agreement_version": 1,
        "distance_m": 3120,
        "duration_s": 540,
    },
    "fare": None,
    "cancel_reason": None,
    "cancelled_by": None,
    "cancellation_fee": None,
    "matching_deadline_at": "2026-11-22T14:05:00Z",
    "driver": {
        "id": "7a9c1e3f-5b7d-4f9a-8c1e-3f5b7d9fa1c3",
        "name": "Dana Driver",
        "vehicle": {"plate": "FXK 123", "seats": 4, "wheelchair_accessible": False},
    },
}

_APPEAL_EXAMPLE = {
    "id": "5c7e9a1b-3d5f-4a7c-9e1b-3d5f7a9c1e3b",
    "rating_id": "9e1b3d5f-7a9c-4e1b-8d5f-7a9c1e3b5d7f",
    "driver_id": "7a9c1e3f-5b7d-4f9a-8c1e-3f5b7d9fa1c3",
    "statement": "The detour was a closed bridge, not my choice.",
    "status": "decided",
    "overdue": False,
    "filed_at": "2026-11-22T15:00:00Z",
    "due_by": "2026-12-06T15:00:00Z",
    "outcome": "rating_removed",
    "reason": "The closure is on the city's public notice for that day.",
    "decided_at": "2026-11-24T10:00:00Z",
    "rating": {
        "id": "9e1b3d5f-7a9c-4e1b-8d5f-7a9c1e3b5d7f",
        "trip_id": _TRIP_ID,
        "stars": 2,
        "comment": "Took a long way round",
        "tags": ["wrong_route"],
        "rater": "rider-7f3a",
        "created_at": "2026-11-22T14:30:00Z",
    },
}

MESSAGES: tuple[Message, ...] = (
    Message(
        "hello",
        HelloFrame,
        "Who the connection belongs to, sent first",
        ((DRIVER, "server_to_client"), (RIDER, "server_to_client")),
        {
            "type": "hello",
            "role": "driver",
            "id": "7a9c1e3f-5b7d-4f9a-8c1e-3f5b7d9fa1c3",
            "ping_interval_s": 10.0,
            "available": False,
        },
    ),
    Message(
        "availability",
        AvailabilityFrame,
        "The driver starts or stops taking offers; the service echoes it once recorded",
        ((DRIVER, "client_to_server"), (DRIVER, "server_to_client")),
        {"type": "availability", "available": True},
    ),
    Message(
        "location",
        LocationFrame,
        "The driver's position",
        ((DRIVER, "client_to_server"),),
        {
            "type": "location",
            "lat": 45.5,
            "lon": -73.5,
            "ts": "2026-11-22T14:00:00Z",
            "heading": 90,
            "speed_mps": 8.1,
        },
    ),
    Message(
        "pong",
        PongFrame,
        "The answer to a ping, either way",
        (
            (DRIVER, "client_to_server"),
            (RIDER, "client_to_server"),
            (DRIVER, "server_to_client"),
            (RIDER, "server_to_client"),
        ),
        {"type": "pong"},
    ),
    Message(
        "offer",
        OfferFrame,
        "A trip offered to the driver, with why",
        ((DRIVER, "server_to_client"),),
        {
            "type": "offer",
            "offer_id": _OFFER_ID,
            "trip_id": _TRIP_ID,
            "pickup": _POSITION,
            "dropoff": {"lat": 45.5225, "lon": -73.58},
            "pickup_distance_m": 300,
            "pickup_eta_s": 60,
            "fare_estimate": "14.20",
            "currency": "CAD",
            "expires_at": "2026-11-22T14:00:17Z",
            "why": "0.3 km away, about 1 min; 14 min since your last trip",
        },
    ),
    Message(
        "offer_withdrawn",
        OfferWithdrawnFrame,
        "An offer is no longer open",
        ((DRIVER, "server_to_client"),),
        {"type": "offer_withdrawn", "offer_id": _OFFER_ID, "reason": "expired"},
    ),
    Message(
        "trip",
        TripFrame,
        "The trip after a change of status",
        ((DRIVER, "server_to_client"), (RIDER, "server_to_client")),
        {"type": "trip", "trip": _TRIP_EXAMPLE},
    ),
    Message(
        "driver_location",
        DriverLocationFrame,
        "Where the rider's driver is",
        ((RIDER, "server_to_client"),),
        {"type": "driver_location", "trip_id": _TRIP_ID, "lat": 45.503, "lon": -73.566},
    ),
    Message(
        "ping",
        PingFrame,
        "Keep-alive, sent periodically by the service; a client may send one too (answered "
        "with a pong)",
        (
            (DRIVER, "server_to_client"),
            (RIDER, "server_to_client"),
            (DRIVER, "client_to_server"),
            (RIDER, "client_to_server"),
        ),
        {"type": "ping"},
    ),
    Message(
        "error",
        ErrorFrame,
        "A frame could not be used; the connection stays open",
        ((DRIVER, "server_to_client"), (RIDER, "server_to_client")),
        {"type": "error", "code": "bad_message", "message": "'type' is missing"},
    ),
    Message(
        "qualification",
        QualificationFrame,
        "On connecting: an item the law requires of the driver or the car is missing, or lapses "
        "soon (docs/jurisdiction.md)",
        ((DRIVER, "server_to_client"),),
        {
            "type": "qualification",
            "eligible": True,
            "missing": [],
            "expiring": [
                {
                    "key": "authorization",
                    "name_fr": "Autorisation de conduire",
                    "name_en": "Driver authorization",
                    "valid_through": "2027-03-08",
                    "days_left": 7,
                    "urgent": True,
                }
            ],
        },
    ),
    Message(
        "appeal_decided",
        AppealDecidedFrame,
        "A person decided the driver's appeal of a rating",
        ((DRIVER, "server_to_client"),),
        {"type": "appeal_decided", "appeal": _APPEAL_EXAMPLE},
    ),
    Message(
        "share_opened",
        ShareOpenedFrame,
        "A link the rider or the driver made to follow their trip was opened for the first time "
        '(docs/safety.md, "Share my trip")',
        ((DRIVER, "server_to_client"), (RIDER, "server_to_client")),
        {
            "type": "share_opened",
            "trip_id": _TRIP_ID,
            "share_id": "3e5a7c9e-1b3d-4f5a-8c7e-9a1b3d5f7a9c",
            "opened_at": "2026-11-22T14:03:10Z",
        },
    ),
    Message(
        "trip_shared",
        TripSharedFrame,
        "The rider's (or the driver's) auto-share policy made their link at assignment, for "
        "the app to send to their contacts",
        ((DRIVER, "server_to_client"), (RIDER, "server_to_client")),
        {
            "type": "trip_shared",
            "trip_id": _TRIP_ID,
            "share_id": "3e5a7c9e-1b3d-4f5a-8c7e-9a1b3d5f7a9c",
            "token": "q3Zf0b8WkN1xYv2cR7tLpA9s",
            "url": "https://ride.example.coop/t/q3Zf0b8WkN1xYv2cR7tLpA9s",
            "expires_at": None,
            "automatic": True,
        },
    ),
    Message(
        "safety_check",
        SafetyCheckFrame,
        'The ride check asks both parties "Everything OK?" (docs/safety.md)',
        ((DRIVER, "server_to_client"), (RIDER, "server_to_client")),
        {
            "type": "safety_check",
            "check_id": "3e5a7c9e-1b3d-4f5a-8c7e-9a1b3d5f7a9c",
            "trip_id": _TRIP_ID,
            "detector": "stopped",
            "asked_at": "2026-11-22T14:20:00Z",
            "answer_by": "2026-11-22T14:22:00Z",
        },
    ),
    Message(
        "safety_check_answer",
        SafetyCheckAnswerFrame,
        "A party's answer to a safety check: ok, or help (an SOS)",
        ((DRIVER, "client_to_server"), (RIDER, "client_to_server")),
        {
            "type": "safety_check_answer",
            "check_id": "3e5a7c9e-1b3d-4f5a-8c7e-9a1b3d5f7a9c",
            "answer": "ok",
        },
    ),
    Message(
        "sos",
        SosFrame,
        "The person raises an SOS (about their open trip unless `trip_id` names one of theirs); "
        "`drill: true` tries the button without alerting anyone. Answered with `sos_status`",
        ((DRIVER, "client_to_server"), (RIDER, "client_to_server")),
        {"type": "sos", "lat": 45.5048, "lon": -73.5698},
    ),
    Message(
        "sos_position",
        SosPositionFrame,
        "Where the person who raised the alert is: at least every `position_every_s` (2 s) "
        "until the alert's `sos_status` is `resolved`",
        ((DRIVER, "client_to_server"), (RIDER, "client_to_server")),
        {
            "type": "sos_position",
            "alert_id": "3b5d7f9a-1c3e-4b5d-8f9a-1c3e5b7d9f1a",
            "lat": 45.5051,
            "lon": -73.5702,
        },
    ),
    Message(
        "sos_status",
        SosStatusFrame,
        "The person's alert: recorded (the answer to `sos`), acknowledged by a person, resolved",
        ((DRIVER, "server_to_client"), (RIDER, "server_to_client")),
        {
            "type": "sos_status",
            "id": "3b5d7f9a-1c3e-4b5d-8f9a-1c3e5b7d9f1a",
            "status": "acknowledged",
            "drill": False,
            "trip_id": _TRIP_ID,
            "position_every_s": 2,
            "at": "2026-11-22T14:06:12Z",
        },
    ),
)


def _schemas() -> tuple[dict[str, str], dict[str, Any]]:
    """Each message model's component name, and every component schema."""
    keyed = [
        (
            message.model,
            "validation"
            if all(direction == "client_to_server" for _, direction in message.channels)
            else "serialization",
        )
        for message in MESSAGES
    ]
    refs, document = models_json_schema(keyed, ref_template=SCHEMA_REF)  # type: ignore[arg-type]
    names = {}
    for (model, mode), ref in refs.items():
        names[model.__name__] = str(ref["$ref"]).rsplit("/", 1)[-1]
        assert mode in {"validation", "serialization"}
    return names, dict(document.get("$defs", {}))


def _operation_id(channel: str, direction: Direction, message: str) -> str:
    verb = "receive" if direction == "client_to_server" else "send"
    return f"{channel}_{verb}_{message}"


@lru_cache
def document() -> dict[str, Any]:
    """The AsyncAPI document (without `servers`, which depend on where it is served)."""
    names, schemas = _schemas()
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {
        key: {
            **spec,
            "messages": {},
            "bindings": {
                "ws": {
                    "bindingVersion": "0.1.0",
                    "query": {
                        "type": "object",
                        "properties": {
                            "token": {
                                "type": "string",
                                "description": "The bearer token, for clients that cannot "
                                "set the Authorization header",
                            }
                        },
                    },
                    "headers": {
                        "type": "object",
                        "properties": {
                            "Authorization": {"type": "string", "pattern": "^Bearer .+$"}
                        },
                    },
                }
            },
        }
        for key, spec in CHANNELS.items()
    }
    operations: dict[str, Any] = {}
    for message in MESSAGES:
        messages[message.name] = {
            "name": message.name,
            "title": message.model.model_config.get("title") or message.name,
            "summary": message.summary,
            "description": message.description,
            "contentType": "application/json",
            "payload": {"$ref": SCHEMA_REF.format(model=names[message.model.__name__])},
            "examples": [{"name": message.name, "payload": message.example}],
        }
        for channel, direction in message.channels:
            channels[channel]["messages"][message.name] = {
                "$ref": f"#/components/messages/{message.name}"
            }
            operations[_operation_id(channel, direction, message.name)] = {
                # AsyncAPI speaks for the service: it receives what clients send, sends the rest.
                "action": "receive" if direction == "client_to_server" else "send",
                "channel": {"$ref": f"#/channels/{channel}"},
                "summary": message.summary,
                "messages": [{"$ref": f"#/channels/{channel}/messages/{message.name}"}],
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Co-op ride-hail realtime",
            "version": "1",
            "description": "The WebSocket messages of wire protocol v1. Every frame is one JSON "
            "object with a `type`. A malformed frame is answered with an `error` frame "
            "(`bad_message`) and the connection stays open. On every (re)connection the service "
            "sends `hello`, then at once the current state of the client's open trip (or a "
            "driver's pending offer).",
            "license": {"name": "AGPL-3.0-or-later"},
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Authorization: Bearer <token>",
                },
                "queryToken": {
                    "type": "httpApiKey",
                    "in": "query",
                    "name": "token",
                    "description": "?token=<token>",
                },
            },
        },
    }


def served_document(*, scheme: str, host: str) -> dict[str, Any]:
    """The document with the server it was fetched from."""
    protocol = "wss" if scheme == "https" else "ws"
    return {
        **document(),
        "servers": {
            "this": {
                "host": host,
                "protocol": protocol,
                "description": "The service that served this document",
                "security": [
                    {"$ref": "#/components/securitySchemes/bearer"},
                    {"$ref": "#/components/securitySchemes/queryToken"},
                ],
            }
        },
    }


router = APIRouter(tags=["documentation"])


@router.get("/asyncapi.json", summary="The WebSocket messages, as AsyncAPI 3.0")
async def asyncapi(request: Request) -> JSONResponse:
    """Every WebSocket channel and message of the protocol, with JSON Schema payloads."""
    host = request.headers.get("host") or request.url.netloc
    return JSONResponse(served_document(scheme=request.url.scheme, host=host))
