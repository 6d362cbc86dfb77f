"""WebSocket frames (docs/protocol.md, "Realtime"): parsing what clients send, shaping replies.

Pure: no I/O. Every frame is one JSON object with a `type`. A frame that is not valid JSON, not an
object, of an unknown type or with bad fields is a `BadFrame`, answered with an error frame; the
connection stays open.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from dispatch.core.errors import field_errors


class BadFrame(ValueError):
    """A frame the server cannot act on; `code` goes into the error frame."""

    def __init__(self, message: str, code: str = "bad_message") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AvailabilityFrame(_Frame):
    type: Literal["availability"]
    available: bool = Field(strict=True)


class LocationFrame(_Frame):
    type: Literal["location"]
    # Strict: a number, never a string or a boolean that happens to convert.
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, strict=True)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, strict=True)
    ts: datetime | None = None
    heading: float | None = Field(default=None, ge=0, le=360, allow_inf_nan=False, strict=True)
    speed_mps: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False, strict=True)


class PingFrame(_Frame):
    type: Literal["ping"]


class PongFrame(_Frame):
    type: Literal["pong"]


DriverFrame = Annotated[
    AvailabilityFrame | LocationFrame | PingFrame | PongFrame, Field(discriminator="type")
]
RiderFrame = Annotated[PingFrame | PongFrame, Field(discriminator="type")]

_DRIVER: TypeAdapter[Any] = TypeAdapter(DriverFrame)
_RIDER: TypeAdapter[Any] = TypeAdapter(RiderFrame)
DRIVER_TYPES = ("availability", "location", "ping", "pong")
RIDER_TYPES = ("ping", "pong")


def _decode(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise BadFrame("A frame must be one JSON object; this is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadFrame("A frame must be a JSON object with a 'type'")
    if not isinstance(value.get("type"), str):
        raise BadFrame("A frame needs a 'type' string")
    return value


def _parse(adapter: TypeAdapter[Any], raw: str, known: tuple[str, ...]) -> Any:
    value = _decode(raw)
    if value["type"] not in known:
        raise BadFrame(
            f"Unknown frame type {value['type'][:40]!r}; this socket takes {', '.join(known)}"
        )
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        errors = field_errors(exc.errors())
        detail = "; ".join(
            f"{e['field'].removeprefix(value['type'] + '.')}: {e['reason']}" for e in errors
        )
        raise BadFrame(f"Bad {value['type']} frame: {detail}") from None


def parse_driver(raw: str) -> AvailabilityFrame | LocationFrame | PingFrame | PongFrame:
    frame: AvailabilityFrame | LocationFrame | PingFrame | PongFrame = _parse(
        _DRIVER, raw, DRIVER_TYPES
    )
    if isinstance(frame, LocationFrame) and frame.ts is not None and frame.ts.tzinfo is None:
        raise BadFrame("Bad location frame: ts must be an RFC 3339 time with its offset (Z)")
    return frame


def parse_rider(raw: str) -> PingFrame | PongFrame:
    frame: PingFrame | PongFrame = _parse(_RIDER, raw, RIDER_TYPES)
    return frame


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), default=str)


def error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}
