"""Positions on the wire and the service area every position must fall in.

One validator serves every endpoint and WebSocket frame that takes a position: the range checks
are the `Position` model's; the area check is `ServiceArea.require`. Another city is another
GeoJSON file named by `COOP_SERVICE_AREA`, nothing else.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from shapely import Point, prepare
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from coop.errors import OutOfServiceArea

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)


class Position(BaseModel):
    """A WGS 84 position, `{"lat": 45.5017, "lon": -73.5673}`.

    Strict, over HTTP as on the socket: a JSON number, never a string (`"45.5"`) or a boolean."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, strict=True)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, strict=True)


def haversine_m(a_lat: float, a_lon: float, b_lat: float, b_lon: float) -> float:
    """Great-circle distance in metres."""
    phi1, phi2 = math.radians(a_lat), math.radians(b_lat)
    dphi = phi2 - phi1
    dlmb = math.radians(b_lon - a_lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class ServiceArea:
    """The polygon (or multipolygon) where the co-op operates."""

    def __init__(self, name: str, geometry: BaseGeometry) -> None:
        if geometry.geom_type not in {"Polygon", "MultiPolygon"} or geometry.is_empty:
            raise ValueError("a service area must be a non-empty Polygon or MultiPolygon")
        if not geometry.is_valid:
            raise ValueError("the service area polygon is not valid (self-intersecting?)")
        self.name = name
        self.geometry = geometry
        prepare(self.geometry)

    @classmethod
    def from_file(cls, path: Path) -> ServiceArea:
        """Reads a GeoJSON Feature, FeatureCollection (first feature) or bare geometry."""
        document = json.loads(Path(path).read_text())
        if document.get("type") == "FeatureCollection":
            document = document["features"][0]
        name = path.stem
        if document.get("type") == "Feature":
            name = (document.get("properties") or {}).get("name", name)
            document = document["geometry"]
        return cls(name, shape(document))

    def contains(self, lat: float, lon: float) -> bool:
        return bool(self.geometry.covers(Point(lon, lat)))

    def require(self, position: Position, what: str = "position") -> Position:
        if not self.contains(position.lat, position.lon):
            raise OutOfServiceArea(
                f"The {what} ({position.lat}, {position.lon}) is outside the service area "
                f"'{self.name}'",
                field=what,
            )
        return position
