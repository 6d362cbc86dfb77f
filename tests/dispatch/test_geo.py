"""Positions: range checks, the service area, and great-circle distance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from coop.errors import OutOfServiceArea
from coop.geo import Position, ServiceArea, haversine_m
from coop.settings import PACKAGE_DIR

MONTREAL = ServiceArea.from_file(PACKAGE_DIR / "data" / "montreal.geojson")


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (45.5017, -73.5673),  # downtown
        (45.5088, -73.5540),  # Old Montréal
        (45.5580, -73.5520),  # Olympic stadium
        (45.4480, -73.7500),  # Dorval
        (45.4390, -73.6700),  # LaSalle / Lachine
        (45.5900, -73.6400),  # Montréal-Nord
    ],
)
def test_places_on_the_island_are_inside(lat: float, lon: float) -> None:
    assert MONTREAL.require(Position(lat=lat, lon=lon))


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (45.5312, -73.5181),  # Longueuil, across the St. Lawrence
        (45.5700, -73.7500),  # Laval, across the Rivière des Prairies
        (48.8566, 2.3522),  # Paris
        (0.0, 0.0),
    ],
)
def test_places_off_the_island_are_out_of_area(lat: float, lon: float) -> None:
    with pytest.raises(OutOfServiceArea) as error:
        MONTREAL.require(Position(lat=lat, lon=lon), "pickup")
    assert error.value.status == 422
    assert error.value.body()["field"] == "pickup"


@pytest.mark.parametrize(
    "value",
    [
        {"lat": 91, "lon": 0},
        {"lat": -90.5, "lon": 0},
        {"lat": 0, "lon": 180.01},
        {"lat": "nan", "lon": 0},
        {"lat": 0, "lon": "inf"},
        {"lat": 45.5},
        {"lat": 45.5, "lon": -73.5, "alt": 3},
        {"lat": "north", "lon": 1},
    ],
)
def test_malformed_positions_are_rejected(value: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Position.model_validate(value)


def test_another_city_is_another_file(tmp_path: Path) -> None:
    square = {
        "type": "Polygon",
        "coordinates": [[[2.2, 48.8], [2.5, 48.8], [2.5, 48.9], [2.2, 48.9], [2.2, 48.8]]],
    }
    path = tmp_path / "paris.geojson"
    path.write_text(json.dumps(square))
    paris = ServiceArea.from_file(path)
    assert paris.contains(48.8566, 2.3522)
    assert not paris.contains(45.5017, -73.5673)


def test_an_invalid_area_is_refused(tmp_path: Path) -> None:
    bow_tie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(bow_tie))
    with pytest.raises(ValueError, match="not valid"):
        ServiceArea.from_file(path)


def test_haversine_known_distance() -> None:
    # Montréal downtown to Québec City, about 233 km as the crow flies.
    assert haversine_m(45.5017, -73.5673, 46.8139, -71.2080) == pytest.approx(233_500, rel=0.01)


coords = st.tuples(st.floats(min_value=-89, max_value=89), st.floats(min_value=-179, max_value=179))


@given(coords, coords)
def test_haversine_is_symmetric_and_non_negative(
    a: tuple[float, float], b: tuple[float, float]
) -> None:
    forward = haversine_m(*a, *b)
    assert forward >= 0
    assert forward == pytest.approx(haversine_m(*b, *a), abs=1e-6)
    assert forward <= 20_040_000  # half the Earth's circumference
