"""How simulated cars and riders move about the city: pure geometry and chance, no I/O.

Cars follow the street grid: a route between two points is an L along the grid's two axes
that stays inside the service area (or a straight line when neither L does).
Distances are small next to the Earth's radius, so a local flat projection around each point is
exact enough for moving a car by a few hundred metres at a time.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

from coop.geo import EARTH_RADIUS_M, ServiceArea, haversine_m

# Montréal's street grid is rotated: its "north" (up boulevard Saint-Laurent) points roughly
# north-west. Another city passes its own bearing (`--grid-bearing`), 0 for a north-south grid.
MONTREAL_GRID_BEARING_DEG = -35.0
DOWNTOWN_MONTREAL = (45.5017, -73.5673)
ARRIVAL_TOLERANCE_M = 1.0
LEG_SAMPLE_M = 100.0  # how finely a leg is checked for staying inside the area


@dataclass(frozen=True)
class Point:
    """A WGS 84 position in degrees."""

    lat: float
    lon: float

    def to_wire(self) -> dict[str, float]:
        return {"lat": round(self.lat, 6), "lon": round(self.lon, 6)}


def distance_m(a: Point, b: Point) -> float:
    """Great-circle distance in metres."""
    return haversine_m(a.lat, a.lon, b.lat, b.lon)


def offset(point: Point, *, north_m: float, east_m: float) -> Point:
    """The point `north_m` north and `east_m` east of `point` (local flat projection)."""
    lat = point.lat + math.degrees(north_m / EARTH_RADIUS_M)
    lon = point.lon + math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(point.lat))))
    return Point(lat, lon)


def local_offset_m(origin: Point, target: Point) -> tuple[float, float]:
    """(north_m, east_m) of `target` seen from `origin` (local flat projection)."""
    north_m = math.radians(target.lat - origin.lat) * EARTH_RADIUS_M
    east_m = (
        math.radians(target.lon - origin.lon) * EARTH_RADIUS_M * math.cos(math.radians(origin.lat))
    )
    return north_m, east_m


def bearing_deg(a: Point, b: Point) -> float:
    """Compass bearing from `a` to `b`, 0 = north, 90 = east, in [0, 360)."""
    north_m, east_m = local_offset_m(a, b)
    if north_m == 0 and east_m == 0:
        return 0.0
    return math.degrees(math.atan2(east_m, north_m)) % 360.0


def move_towards(a: Point, b: Point, step_m: float) -> Point:
    """The point `step_m` from `a` on the way to `b`, or `b` itself if it is closer than that."""
    total = distance_m(a, b)
    if total <= step_m or total == 0:
        return b
    north_m, east_m = local_offset_m(a, b)
    fraction = step_m / total
    return offset(a, north_m=north_m * fraction, east_m=east_m * fraction)


def on_land(area: ServiceArea, a: Point, b: Point, *, step_m: float = LEG_SAMPLE_M) -> bool:
    """Whether the straight leg from `a` to `b` stays inside the area (checked every `step_m`)."""
    samples = max(1, math.ceil(distance_m(a, b) / step_m))
    north_m, east_m = local_offset_m(a, b)
    return all(
        area.contains(point.lat, point.lon)
        for point in (
            offset(a, north_m=north_m * i / samples, east_m=east_m * i / samples)
            for i in range(samples + 1)
        )
    )


def grid_route(
    start: Point, end: Point, *, area: ServiceArea, grid_bearing_deg: float
) -> list[Point]:
    """Waypoints from `start` to `end` along the street grid (the start itself excluded).

    Of the two L-shaped routes, the first that stays inside the area is taken, so a car does
    not cut across water; failing both, the straight line if it stays inside; failing that, an
    L whose corner at least is inside (an area with narrow necks), else the straight line.
    """
    north_m, east_m = local_offset_m(start, end)
    theta = math.radians(grid_bearing_deg)
    # The grid's unit axes in (north, east): "up" along the bearing, "across" at right angles.
    up = (math.cos(theta), math.sin(theta))
    across = (-math.sin(theta), math.cos(theta))
    along_up = north_m * up[0] + east_m * up[1]
    along_across = north_m * across[0] + east_m * across[1]
    corners = [
        offset(start, north_m=along_up * up[0], east_m=along_up * up[1]),
        offset(start, north_m=along_across * across[0], east_m=along_across * across[1]),
    ]
    if any(
        min(distance_m(corner, start), distance_m(corner, end)) < ARRIVAL_TOLERANCE_M
        for corner in corners
    ):
        return [end]  # already on one grid line
    for corner in corners:
        if on_land(area, start, corner) and on_land(area, corner, end):
            return [corner, end]
    if on_land(area, start, end):
        return [end]
    for corner in corners:
        if area.contains(corner.lat, corner.lon):
            return [corner, end]
    return [end]


def random_point_near(
    rng: random.Random,
    area: ServiceArea,
    *,
    center: Point,
    spread_m: float,
    attempts: int = 200,
) -> Point:
    """A point inside the area, normally distributed around `center` with `spread_m` sigma.

    Falls back to uniform over the area's bounding box (still inside the area) when the normal
    draws keep landing outside, e.g. a centre next to the shore with a wide spread.
    """
    for _ in range(attempts):
        candidate = offset(center, north_m=rng.gauss(0, spread_m), east_m=rng.gauss(0, spread_m))
        if area.contains(candidate.lat, candidate.lon):
            return candidate
    return random_point_in(rng, area)


def random_point_in(rng: random.Random, area: ServiceArea, attempts: int = 10_000) -> Point:
    """A point uniformly distributed over the area (rejection sampling in its bounding box)."""
    min_lon, min_lat, max_lon, max_lat = area.geometry.bounds
    for _ in range(attempts):
        candidate = Point(rng.uniform(min_lat, max_lat), rng.uniform(min_lon, max_lon))
        if area.contains(candidate.lat, candidate.lon):
            return candidate
    raise ValueError(f"could not find a point inside the service area '{area.name}'")


def random_destination(
    rng: random.Random,
    area: ServiceArea,
    origin: Point,
    *,
    min_m: float,
    max_m: float,
    attempts: int = 200,
) -> Point:
    """A point inside the area between `min_m` and `max_m` (straight line) from `origin`."""
    if not 0 <= min_m <= max_m:
        raise ValueError("need 0 <= min_m <= max_m")
    for _ in range(attempts):
        reach = rng.uniform(min_m, max_m)
        heading = rng.uniform(0, 2 * math.pi)
        candidate = offset(
            origin, north_m=reach * math.cos(heading), east_m=reach * math.sin(heading)
        )
        if area.contains(candidate.lat, candidate.lon):
            return candidate
    # Boxed in by water on every side at that range: stay close instead.
    return random_point_near(rng, area, center=origin, spread_m=max(min_m, 200.0))


def poisson_gap_s(rng: random.Random, rate_per_s: float) -> float:
    """Seconds to the next arrival of a Poisson process with `rate_per_s` arrivals a second."""
    if rate_per_s <= 0:
        raise ValueError("the rate must be positive")
    return rng.expovariate(rate_per_s)


@dataclass
class Car:
    """A car's position, cruising speed and the waypoints still ahead of it."""

    position: Point
    speed_mps: float
    route: deque[Point] = field(default_factory=deque)
    heading_deg: float = 0.0
    odometer_m: float = 0.0

    @property
    def arrived(self) -> bool:
        return not self.route

    def drive_to(self, end: Point, *, area: ServiceArea, grid_bearing_deg: float) -> None:
        """Replaces the route by one along the grid to `end`."""
        self.route = deque(
            grid_route(self.position, end, area=area, grid_bearing_deg=grid_bearing_deg)
        )

    def stop(self) -> None:
        self.route.clear()

    def advance(self, seconds: float) -> float:
        """Drives along the route for `seconds` at cruising speed; answers the metres covered."""
        budget = max(0.0, seconds) * self.speed_mps
        covered = 0.0
        while self.route and budget - covered > 0:
            waypoint = self.route[0]
            remaining = distance_m(self.position, waypoint)
            if remaining > 0:
                self.heading_deg = bearing_deg(self.position, waypoint)
            step = min(remaining, budget - covered)
            self.position = move_towards(self.position, waypoint, step)
            covered += step
            if remaining - step <= ARRIVAL_TOLERANCE_M:
                self.position = waypoint
                self.route.popleft()
        self.odometer_m += covered
        return covered
