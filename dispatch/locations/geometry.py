"""Between the wire's `{lat, lon}` and PostGIS geography points (only at the service boundary)."""

from __future__ import annotations

from geoalchemy2 import WKBElement
from geoalchemy2.shape import from_shape, to_shape
from shapely import Point

from coop.geo import Position


def geography_point(lat: float, lon: float) -> WKBElement:
    return from_shape(Point(lon, lat), srid=4326)


def position_of(element: WKBElement) -> Position:
    point = to_shape(element)
    return Position(lat=point.y, lon=point.x)
