"""Parsing what clients send on the sockets (pure)."""

from __future__ import annotations

import json

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


@given(st.text(max_size=200))
def test_no_text_crashes_the_parser(raw: str) -> None:
    try:
        frames.parse_driver(raw)
        frames.parse_rider(raw)
    except BadFrame:
        pass


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_no_json_value_crashes_the_parser(value: object) -> None:
    for candidate in (value, {"type": "location", "lat": value, "lon": value}):
        try:
            frames.parse_driver(json.dumps(candidate))
        except BadFrame:
            pass
        except ValueError:  # json.dumps refuses NaN-free encodings it cannot make: not ours
            pass
