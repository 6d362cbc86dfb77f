"""Parsing what clients send on the sockets (pure)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.realtime import frames
from dispatch.realtime.frames import AvailabilityFrame, BadFrame, LocationFrame, PongFrame


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
