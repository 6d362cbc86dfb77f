"""The frames of the dispatch sockets (docs/protocol.md, "Realtime"), both ways, as models:
parsing what clients send, and the connection's own frames the service sends (`hello`, `error`,
`ping`/`pong`; `Frame.encode` writes them). The frames about a trip or an offer are the trip's
(`dispatch.trips.frames`), the driver's position the locations' (`dispatch.locations.frames`).

`server.asyncapi` publishes these same models, so `/asyncapi.json` is what is sent. Pure: no
I/O. Every frame is one JSON object with a `type`. A frame that is not valid JSON, not an object,
of an unknown type or with bad fields is a `BadFrame`, answered with an error frame; the
connection stays open.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from coop.errors import field_errors
from coop.frames import Frame
from dispatch.locations.frames import AvailabilityFrame
from dispatch.safety.frames import SosFrame, SosPositionFrame
from dispatch.safety.ridecheck_frames import SafetyCheckAnswerFrame

# Re-exported: each frame lives with its subject (availability, the ride check).
__all__ = ["AvailabilityFrame", "SafetyCheckAnswerFrame"]


class BadFrame(ValueError):
    """A frame the server cannot act on; `code` goes into the error frame."""

    def __init__(
        self, message: str, code: str = "bad_message", *, place: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.place = place


# --- frames clients send (the ping and pong go both ways; the service echoes availability) ----


class _Frame(Frame):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    AvailabilityFrame
    | LocationFrame
    | PingFrame
    | PongFrame
    | SafetyCheckAnswerFrame
    | SosFrame
    | SosPositionFrame,
    Field(discriminator="type"),
]
RiderFrame = Annotated[
    PingFrame | PongFrame | SafetyCheckAnswerFrame | SosFrame | SosPositionFrame,
    Field(discriminator="type"),
]

_DRIVER: TypeAdapter[Any] = TypeAdapter(DriverFrame)
_RIDER: TypeAdapter[Any] = TypeAdapter(RiderFrame)
DRIVER_TYPES = (
    "availability",
    "location",
    "ping",
    "pong",
    "safety_check_answer",
    "sos",
    "sos_position",
)
RIDER_TYPES = ("ping", "pong", "safety_check_answer", "sos", "sos_position")


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


def parse_driver(
    raw: str,
) -> (
    AvailabilityFrame
    | LocationFrame
    | PingFrame
    | PongFrame
    | SafetyCheckAnswerFrame
    | SosFrame
    | SosPositionFrame
):
    frame: (
        AvailabilityFrame
        | LocationFrame
        | PingFrame
        | PongFrame
        | SafetyCheckAnswerFrame
        | SosFrame
        | SosPositionFrame
    )
    frame = _parse(_DRIVER, raw, DRIVER_TYPES)
    if isinstance(frame, LocationFrame) and frame.ts is not None and frame.ts.tzinfo is None:
        raise BadFrame("Bad location frame: ts must be an RFC 3339 time with its offset (Z)")
    return frame


def parse_rider(
    raw: str,
) -> PingFrame | PongFrame | SafetyCheckAnswerFrame | SosFrame | SosPositionFrame:
    frame: PingFrame | PongFrame | SafetyCheckAnswerFrame | SosFrame | SosPositionFrame
    frame = _parse(_RIDER, raw, RIDER_TYPES)
    return frame


# --- frames the service sends ----------------------------------------------------------------


class HelloFrame(Frame):
    """The first frame on every connection; the open trip (or pending offer) follows at once."""

    model_config = ConfigDict(title="Hello")

    type: Literal["hello"]
    role: Literal["driver", "rider"]
    id: uuid.UUID = Field(description="The connected driver's or rider's id")
    ping_interval_s: float = Field(gt=0, description="How often the service sends a ping")
    available: bool | None = Field(
        default=None, description="Drivers only: whether the service counts them available"
    )

    def wire(self) -> dict[str, Any]:
        wire = super().wire()
        if self.available is None:  # a rider's hello has no `available` at all
            del wire["available"]
        return wire


class ErrorFrame(Frame):
    """A frame could not be used; the connection stays open."""

    model_config = ConfigDict(title="Error")

    type: Literal["error"]
    code: str = Field(
        description="A short stable code: bad_message, out_of_service_area, unavailable, "
        "rate_limited (a location frame beyond one per 100 ms on average, 10 at once, or an "
        "availability frame beyond one a second on average, 3 at once: dropped), "
        "implausible_position (a location implying an impossible speed: not used, counted on "
        "the trip), overloaded (the service sheds this socket's location frames for a while), "
        "service_capacity_reached (going available while the cap of cars in service is reached: "
        "waiting in line, `place`), unknown_safety_check (an answer to a safety check that was "
        "not put to this account), safety_check_answered (a second answer to one check); for "
        "the SOS frames, the HTTP problem's type (not_your_trip, trip_not_found, "
        "alert_not_found, alert_resolved)",
        examples=[
            "bad_message",
            "out_of_service_area",
            "rate_limited",
            "implausible_position",
            "overloaded",
        ],
    )
    message: str
    report_every_ms: int | None = Field(
        default=None,
        description="With `overloaded` only: send `location` frames at most this often (keeping "
        "only the newest position) for the next 10 s, and again whenever told; reports sent "
        "faster, or that waited over 2 s before the server read them (by their `ts`), are dropped "
        "while the server catches up",
        examples=[2000],
    )

    place: int | None = Field(
        default=None,
        description="With `service_capacity_reached` only: the driver's place in line for a car "
        "to leave (1: next); an `availability` frame with `available: true` follows when admitted",
        examples=[3],
    )

    def wire(self) -> dict[str, Any]:
        wire = super().wire()
        for optional in ("report_every_ms", "place"):
            if wire.get(optional) is None:
                wire.pop(optional, None)
        return wire


def error(code: str, message: str) -> ErrorFrame:
    return ErrorFrame(type="error", code=code, message=message)


def capacity_reached(place: int, cap: int) -> ErrorFrame:
    """Going available while the authorization's cap of cars in service is reached."""
    return ErrorFrame(
        type="error",
        code="service_capacity_reached",
        message=f"All {cap} cars the co-op's authorization allows are in service: you are number "
        f"{place} in line and will be told when a car leaves",
        place=place,
    )


def overloaded(report_every_ms: int) -> ErrorFrame:
    """Backpressure: the server is catching up and asks for fewer location reports."""
    return ErrorFrame(
        type="error",
        code="overloaded",
        message="The server is catching up: send your location at most every "
        f"{report_every_ms} ms for a while; faster reports are dropped (the newest is kept)",
        report_every_ms=report_every_ms,
    )
