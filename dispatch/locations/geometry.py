"""Between the wire's `{lat, lon}` and PostGIS geography points (only at the service boundary)."""

from __future__ import annotations

from typing import Any

from geoalchemy2 import Geometry, WKBElement
from geoalchemy2.shape import from_shape, to_shape
from shapely import Point
from sqlalchemy import ColumnElement, cast, func
from sqlalchemy.orm import QueryableAttribute

from coop.geo import Position


def geography_point(lat: float, lon: float) -> WKBElement:
    return from_shape(Point(lon, lat), srid=4326)


def position_of(element: WKBElement) -> Position:
    point = to_shape(element)
    return Position(lat=point.y, lon=point.x)


def lat_lon(
    point: ColumnElement[Any] | QueryableAttribute[Any],
) -> tuple[ColumnElement[float], ColumnElement[float]]:
    """SQL: the latitude and longitude of a geography point column (read off its geometry)."""
    as_geometry = cast(point, Geometry(srid=4326))
    return func.ST_Y(as_geometry), func.ST_X(as_geometry)
