"""The socket frames (pure): parsing what clients send, and the bytes of what the service sends."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from coop.geo import Position
from dispatch.locations.frames import DriverLocationFrame
from dispatch.realtime import frames
from dispatch.realtime.frames import (
    AvailabilityFrame,
    BadFrame,
    ErrorFrame,
    HelloFrame,
    LocationFrame,
    PingFrame,
    PongFrame,
)
from dispatch.trips.frames import OfferFrame, OfferWithdrawnFrame


def test_a_full_location_frame() -> None:
    frame = frames.parse_driver(
        json.dumps(
            {
                "type": "location",
                "lat": 45.5,
                "lon": -73.5,
                "ts": "2026-11-22T10:00:00Z",
                "heading": 90,
                "speed_mps": 8.1,
            }
        )
    )
    assert isinstance(frame, LocationFrame)
    assert (frame.lat, frame.lon, frame.heading, frame.speed_mps) == (45.5, -73.5, 90, 8.1)
    assert frame.ts is not None and frame.ts.utcoffset() is not None


def test_availability_and_pong() -> None:
    assert frames.parse_driver('{"type":"availability","available":false}') == AvailabilityFrame(
        type="availability", available=False
    )
    assert isinstance(frames.parse_rider('{"type":"pong"}'), PongFrame)


@pytest.mark.parametrize(
    "raw",
    [
        '{"type":"availability","available":1}',  # a number is not a yes
        '{"type":"availability","available":"true"}',
        '{"type":"location","lat":45.5,"lon":-73.5,"extra":1}',
        '{"type":"location","lat":true,"lon":-73.5}',
        '{"type":"location","lat":45.5,"lon":-181}',
        '{"type":"location","lat":45.5,"lon":-73.5,"ts":"2026-11-22T10:00:00"}',
        '"location"',
        "null",
        "",
    ],
)
def test_bad_driver_frames(raw: str) -> None:
    with pytest.raises(BadFrame) as bad:
        frames.parse_driver(raw)
    assert bad.value.code == "bad_message" and bad.value.message


def test_an_error_frame_names_the_field_without_the_type_prefix() -> None:
    with pytest.raises(BadFrame) as bad:
        frames.parse_driver('{"type":"location","lat":99,"lon":0}')
    assert bad.value.message.startswith("Bad location frame: lat:")


def _is_latitude(value: object) -> bool:
    """What a location frame's `lat` must be, said independently of the parser: a JSON number
    (never a boolean or a string), finite, within [-90, 90]."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and -90 <= value <= 90
    )


@given(st.text(max_size=200))
def test_no_text_crashes_the_parser(raw: str) -> None:
    # Whatever the text, the parser answers a frame or a BadFrame; anything else escapes.
    for parse in (frames.parse_driver, frames.parse_rider):
        try:
            frame = parse(raw)
        except BadFrame as bad:
            assert bad.code == "bad_message" and bad.message
        else:  # text that parses is a known frame of valid JSON
            assert json.loads(raw)["type"] == frame.type


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(JSON_VALUES)
def test_no_json_value_crashes_the_parser(value: object) -> None:
    raw = json.dumps(value)  # NaN and infinities too, as Python's json writes them
    try:
        frame = frames.parse_driver(raw)
    except BadFrame as bad:
        assert bad.code == "bad_message" and bad.message
    else:
        assert isinstance(value, dict) and value.get("type") in frames.DRIVER_TYPES
        assert frame.type == value["type"]


@given(JSON_VALUES | st.floats(min_value=-200, max_value=200))
def test_a_location_is_taken_exactly_when_its_fields_are_valid(value: object) -> None:
    """The parser's verdict on `lat` against the rule written out above: a frame with a bad
    latitude is refused, one with a good latitude is taken with that latitude."""
    raw = json.dumps({"type": "location", "lat": value, "lon": -73.5})
    if _is_latitude(value):
        frame = frames.parse_driver(raw)
        assert isinstance(frame, LocationFrame) and frame.lat == value
    else:
        with pytest.raises(BadFrame) as bad:
            frames.parse_driver(raw)
        assert bad.value.message.startswith("Bad location frame: lat")


@given(JSON_VALUES)
def test_availability_takes_a_boolean_and_nothing_else(value: object) -> None:
    raw = json.dumps({"type": "availability", "available": value})
    if isinstance(value, bool):
        assert frames.parse_driver(raw) == AvailabilityFrame(type="availability", available=value)
    else:
        with pytest.raises(BadFrame):
            frames.parse_driver(raw)


# --- what the service sends: the models write the same bytes the dict literals did ------------

_OFFER = uuid.UUID("0b7e4c1a-3d2f-4e8b-9c6a-5f1e2d3c4b5a")
_TRIP = uuid.UUID("6f1c2b9e-8a55-4d0b-9a3e-2f7f0c1d4e5a")
_DRIVER = uuid.UUID("7a9c1e3f-5b7d-4f9a-8c1e-3f5b7d9fa1c3")


def test_an_offer_is_written_byte_for_byte_as_before() -> None:
    frame = OfferFrame(
        type="offer",
        offer_id=_OFFER,
        trip_id=_TRIP,
        pickup=Position(lat=45.5017, lon=-73.5673),
        dropoff=Position(lat=45.5225, lon=-73.58),
        pickup_distance_m=300,
        pickup_eta_s=60,
        fare_estimate="14.20",
        currency="CAD",
        expires_at=datetime(2026, 11, 22, 14, 0, 17, 123456, tzinfo=UTC),
        why="0.3 km away — à 1 min",
        wheelchair_accessible=True,
    )
    assert frame.encode() == (
        '{"type":"offer","offer_id":"0b7e4c1a-3d2f-4e8b-9c6a-5f1e2d3c4b5a",'
        '"trip_id":"6f1c2b9e-8a55-4d0b-9a3e-2f7f0c1d4e5a",'
        '"pickup":{"lat":45.5017,"lon":-73.5673},"dropoff":{"lat":45.5225,"lon":-73.58},'
        '"pickup_distance_m":300,"pickup_eta_s":60,"fare_estimate":"14.20","currency":"CAD",'
        '"expires_at":"2026-11-22T14:00:17.123456+00:00",'
        '"why":"0.3 km away \\u2014 \\u00e0 1 min","wheelchair_accessible":true}'
    )


def test_the_small_frames_are_written_byte_for_byte_as_before() -> None:
    assert PingFrame(type="ping").encode() == '{"type":"ping"}'
    assert PongFrame(type="pong").encode() == '{"type":"pong"}'
    assert (
        AvailabilityFrame(type="availability", available=True).encode()
        == '{"type":"availability","available":true}'
    )
    assert frames.error("bad_message", "'type' is missing").encode() == (
        '{"type":"error","code":"bad_message","message":"\'type\' is missing"}'
    )
    withdrawn = OfferWithdrawnFrame(type="offer_withdrawn", offer_id=_OFFER, reason="expired")
    assert withdrawn.encode() == (
        '{"type":"offer_withdrawn","offer_id":"0b7e4c1a-3d2f-4e8b-9c6a-5f1e2d3c4b5a",'
        '"reason":"expired"}'
    )
    assert DriverLocationFrame(
        type="driver_location", trip_id=_TRIP, lat=45.503, lon=-73.566
    ).encode() == (
        '{"type":"driver_location","trip_id":"6f1c2b9e-8a55-4d0b-9a3e-2f7f0c1d4e5a",'
        '"lat":45.503,"lon":-73.566}'
    )


def test_a_riders_hello_has_no_availability_and_a_drivers_has() -> None:
    rider = HelloFrame(type="hello", role="rider", id=_DRIVER, ping_interval_s=10.0)
    assert rider.encode() == (
        '{"type":"hello","role":"rider","id":"7a9c1e3f-5b7d-4f9a-8c1e-3f5b7d9fa1c3",'
        '"ping_interval_s":10.0}'
    )
    driver = HelloFrame(
        type="hello", role="driver", id=_DRIVER, ping_interval_s=10.0, available=False
    )
    assert driver.encode().endswith('"ping_interval_s":10.0,"available":false}')


def test_a_frame_that_breaks_its_model_is_never_sent() -> None:
    with pytest.raises(ValidationError):
        OfferWithdrawnFrame.model_validate(
            {"type": "offer_withdrawn", "offer_id": "not an id", "reason": "expired"}
        )
    with pytest.raises(ValidationError):
        DriverLocationFrame(type="driver_location", trip_id=_TRIP, lat=91, lon=0)
    with pytest.raises(ValidationError):
        ErrorFrame.model_validate({"type": "offer", "code": "x", "message": "y"})
