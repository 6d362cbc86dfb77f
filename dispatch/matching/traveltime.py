"""The travel-time model: how long driving between two points takes, learned from trips.

Pure: no I/O, no clock. One model serves the quote's duration, the matcher's pickup ETAs and the
offer's `pickup_eta_s` (docs/eta.md says how it was chosen and how well it does on real trips).

- **Cells.** Speeds are kept per H3 cell at resolution `RESOLUTION` (8: cells of about 0.74 km²,
  0.53 km edge; a few city blocks, small enough to tell a downtown core from the avenue beside
  it, large enough that a few hundred trips a day fill the busy ones) and per hour of the week
  (`hour_of_week`, local time: Monday 00:00-00:59 is 0, Sunday 23:00-23:59 is 167).
- **Learning** (`learn`) reads *passages*: one trip's distance and time inside one cell during
  one hour. A cell-hour's own pace (seconds per metre) is its passages' total time over their
  total distance: the harmonic mean of their speeds, weighted by distance, which is what makes
  travel times add up. It is then shrunk toward the city-wide pace of that hour of the week,
  which is itself shrunk toward the city-wide pace of all hours, which is shrunk toward the prior
  (the constant the service used before it learned anything, `PRIOR_SPEED_MPS`), each with
  weight n / (n + `SHRINK_K`) for n passages: a cell crossed by three trips moves a little from
  the city's speed, one crossed by three hundred speaks for itself.
- **Estimating** (`estimate_s`, `estimate_s_array`): straight-line distance x `DETOUR_FACTOR` x
  the mean pace along the line, taken by the trapezoid rule over the cells of the origin, the
  midpoint and the destination (weights 1/4, 1/2, 1/4). A point in a cell the model has never
  seen takes the city-wide pace of the hour.
- **Bounds.** Every pace is clamped to speeds between `MIN_SPEED_MPS` and `MAX_SPEED_MPS`, so
  no cell (a jam, a stretch of bad data) can make an ETA infinite, negative or absurd.

Learning never sees an unbelievable move: `passages_from_trail` judges a trail with the meter's
own plausibility check (`dispatch.locations.plausibility`, under the agreement's
`dispatch.max_plausible_speed_kmh`), and the store leaves out trips the ingest already counted
implausible positions on.

Learning counts time in the service's seconds, as the meter does. Trails are stamped by the
server's real clock; in a sped-up demo (`COOP_METER_TIME_SCALE`) each real second is
`time_scale` seconds of the simulated city, whose cars drive at city speeds in those seconds.
Read in real seconds, their moves would look `time_scale` times too fast and teach the model
speeds no street has (every cell at the `MAX_SPEED_MPS` cap).
"""

from __future__ import annotations

import importlib
import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import h3
import numpy as np
import numpy.typing as npt

from coop.geo import EARTH_RADIUS_M, haversine_m
from dispatch.locations.plausibility import Fix, Track, Verdict, kmh_to_mps

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

RESOLUTION = 8
HOURS = 7 * 24
# Road distance over straight-line distance on a city street grid (as the quote always assumed).
DETOUR_FACTOR = 1.3
# Before any trip: the quote's average city speed, stops included (25 km/h). The matcher used to
# assume 30 km/h for pickups; one model has one prior, and it is the speed of whole trips, which
# is what the model learns from.
PRIOR_SPEED_MPS = 25 / 3.6
# Passages that weigh as much as the level above (the empirical-Bayes prior's strength).
SHRINK_K = 10.0
# No pace outside these speeds: 3 km/h (walking pace: a jam) to 110 km/h (the autoroute).
MIN_SPEED_MPS = 3 / 3.6
MAX_SPEED_MPS = 110 / 3.6
# A gap between two trail points longer than this says nothing about where the time went.
MAX_SEGMENT_S = 120.0
# Trapezoid weights of the origin, the midpoint and the destination.
_WEIGHTS = (0.25, 0.5, 0.25)


def _compiled_latlng_to_cell() -> Callable[[float, float, int], int]:
    # The batch looks up thousands of points: h3's compiled core takes a third of the time of
    # its public wrapper (which only converts the same integer). Fall back to the wrapper if a
    # later h3 moves it.
    try:
        core = importlib.import_module("h3._cy")
        function: Callable[[float, float, int], int] = core.latlng_to_cell
        if int(function(45.5, -73.6, RESOLUTION)) == h3.api.basic_int.latlng_to_cell(
            45.5, -73.6, RESOLUTION
        ):
            return function
    except (ImportError, AttributeError, TypeError, ValueError):
        pass
    wrapper: Callable[[float, float, int], int] = h3.api.basic_int.latlng_to_cell
    return wrapper


_latlng_to_cell = _compiled_latlng_to_cell()


def hour_of_week(at: datetime, zone: ZoneInfo) -> int:
    """The hour of the week of `at` in the city's time zone: Monday 00h is 0, Sunday 23h 167."""
    local = at.astimezone(zone)
    return local.weekday() * 24 + local.hour


def cell_of(lat: float, lon: float) -> int:
    """The H3 cell (resolution `RESOLUTION`, as an integer) holding a point; -1 if not a point."""
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        return -1
    return _latlng_to_cell(lat, lon, RESOLUTION)


def cells_of(lat: FloatArray, lon: FloatArray) -> IntArray:
    """`cell_of` for arrays of points (one call into H3 per distinct point)."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    ok = (np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)).ravel()
    out = np.full(ok.size, -1, dtype=np.int64)
    where = np.flatnonzero(ok)
    if where.size:
        # `map` calls the compiled function with no Python frame per point.
        out[where] = np.fromiter(
            map(
                _latlng_to_cell,
                lat.ravel()[where].tolist(),
                lon.ravel()[where].tolist(),
                itertools.repeat(RESOLUTION, where.size),
            ),
            dtype=np.int64,
            count=where.size,
        )
    return out.reshape(lat.shape)


def _clamp_pace(pace: FloatArray) -> FloatArray:
    pace = np.where(np.isfinite(pace), pace, 1 / PRIOR_SPEED_MPS)
    return np.clip(pace, 1 / MAX_SPEED_MPS, 1 / MIN_SPEED_MPS)


@dataclass(frozen=True)
class Passages:
    """What learning reads, as parallel arrays: one trip's distance and time in one cell-hour."""

    cell: IntArray
    hour: IntArray
    distance_m: FloatArray
    duration_s: FloatArray

    @staticmethod
    def empty() -> Passages:
        return Passages(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))


@dataclass(frozen=True)
class CellStats:
    """Sufficient statistics per cell-hour (what the store keeps): passages, metres, seconds."""

    cell: IntArray
    hour: IntArray
    passages: IntArray
    distance_m: FloatArray
    duration_s: FloatArray

    @staticmethod
    def of(passages: Passages) -> CellStats:
        """Sums passages by (cell, hour)."""
        if passages.cell.size == 0:
            return CellStats(
                np.zeros(0, np.int64),
                np.zeros(0, np.int64),
                np.zeros(0, np.int64),
                np.zeros(0),
                np.zeros(0),
            )
        keys = np.stack([passages.cell, passages.hour], axis=1)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        count = np.bincount(inverse, minlength=len(unique)).astype(np.int64)
        distance = np.bincount(inverse, passages.distance_m, minlength=len(unique))
        duration = np.bincount(inverse, passages.duration_s, minlength=len(unique))
        return CellStats(
            unique[:, 0].astype(np.int64),
            unique[:, 1].astype(np.int64),
            count,
            distance.astype(np.float64),
            duration.astype(np.float64),
        )


@dataclass(frozen=True)
class TravelModel:
    """Paces (seconds per road metre) per known cell and hour of week, and the city's per hour.

    `cells` is sorted; `pace[i, h]` is cell `cells[i]`'s pace in hour `h`; `city_pace[h]` serves
    every cell the model has no row for. `version` names the stored model it was built from (0:
    the prior, before any trip)."""

    version: int
    cells: IntArray
    pace: FloatArray
    city_pace: FloatArray
    passages: int = 0

    @staticmethod
    def prior(version: int = 0) -> TravelModel:
        return TravelModel(
            version=version,
            cells=np.zeros(0, np.int64),
            pace=np.zeros((0, HOURS)),
            city_pace=np.full(HOURS, 1 / PRIOR_SPEED_MPS),
        )

    def city_speed_kmh(self, hour: int | None = None) -> float:
        """The city-wide speed of an hour of the week (or the mean over the week), in km/h."""
        pace = self.city_pace.mean() if hour is None else self.city_pace[hour]
        return float(3.6 / pace)

    def pace_array(self, cell: IntArray, hour: IntArray) -> FloatArray:
        """The pace of each (cell, hour); unknown cells get the city-wide pace of the hour."""
        cell = np.asarray(cell, dtype=np.int64)
        hour = np.asarray(hour, dtype=np.int64) % HOURS
        city = self.city_pace[hour]
        if self.cells.size == 0:
            return np.broadcast_to(city, cell.shape).astype(np.float64)
        at = np.searchsorted(self.cells, cell)
        at = np.minimum(at, self.cells.size - 1)
        known = self.cells[at] == cell
        own = self.pace[at, np.broadcast_to(hour, cell.shape)]
        return np.where(known, own, city)

    def estimate_s_array(
        self,
        *,
        from_lat: FloatArray,
        from_lon: FloatArray,
        to_lat: FloatArray,
        to_lon: FloatArray,
        hour: int,
        line_m: FloatArray | None = None,
        from_cell: IntArray | None = None,
        to_cell: IntArray | None = None,
    ) -> FloatArray:
        """Seconds to drive between each pair of points, unrounded.

        `line_m`, when given, is the straight-line distance already measured (PostGIS's, in the
        matcher); otherwise it is the great-circle distance. `from_cell` and `to_cell`, when
        given, are `cells_of` the endpoints (the matcher finds each driver's and each pickup's
        once, not once per pairing). Points that are not points (NaN) take the city-wide pace of
        the hour."""
        from_lat = np.asarray(from_lat, dtype=np.float64)
        from_lon = np.asarray(from_lon, dtype=np.float64)
        to_lat = np.asarray(to_lat, dtype=np.float64)
        to_lon = np.asarray(to_lon, dtype=np.float64)
        if line_m is None:
            line_m = haversine_array(from_lat, from_lon, to_lat, to_lon)
        line = np.asarray(line_m, dtype=np.float64)
        if line.size and not (np.isfinite(line).all() and line.min() >= 0):
            raise ValueError("distances must be finite and >= 0 metres")
        if self.cells.size == 0:
            # Nothing learned per cell (the prior): every point has the city's pace.
            return (
                line
                * DETOUR_FACTOR
                * _clamp_pace(np.full(line.shape, self.city_pace[hour % HOURS]))
            )
        mid_lat, mid_lon = _midpoints(from_lat, from_lon, to_lat, to_lon)
        hours = np.full(line.shape, hour % HOURS, dtype=np.int64)
        pace = (
            _WEIGHTS[0]
            * self.pace_array(
                cells_of(from_lat, from_lon) if from_cell is None else from_cell, hours
            )
            + _WEIGHTS[1] * self.pace_array(cells_of(mid_lat, mid_lon), hours)
            + _WEIGHTS[2]
            * self.pace_array(cells_of(to_lat, to_lon) if to_cell is None else to_cell, hours)
        )
        return line * DETOUR_FACTOR * _clamp_pace(pace)

    def estimate_s(
        self,
        *,
        from_lat: float,
        from_lon: float,
        to_lat: float,
        to_lon: float,
        hour: int,
        line_m: float | None = None,
    ) -> float:
        """`estimate_s_array` for one pair of points (the same arithmetic, so the same answer)."""
        return float(
            self.estimate_s_array(
                from_lat=np.array([from_lat]),
                from_lon=np.array([from_lon]),
                to_lat=np.array([to_lat]),
                to_lon=np.array([to_lon]),
                hour=hour,
                line_m=None if line_m is None else np.array([line_m]),
            )[0]
        )

    def pickup_eta_s_array(
        self,
        *,
        distance_m: FloatArray,
        from_lat: FloatArray,
        from_lon: FloatArray,
        to_lat: FloatArray,
        to_lon: FloatArray,
        hour: int,
        from_cell: IntArray | None = None,
        to_cell: IntArray | None = None,
    ) -> IntArray:
        """Whole seconds (nearest, ties to even) to drive to each pickup `distance_m` away."""
        seconds = self.estimate_s_array(
            from_lat=from_lat,
            from_lon=from_lon,
            to_lat=to_lat,
            to_lon=to_lon,
            hour=hour,
            line_m=distance_m,
            from_cell=from_cell,
            to_cell=to_cell,
        )
        return np.rint(seconds).astype(np.int64)

    def route_duration_s(
        self,
        *,
        pickup_lat: float,
        pickup_lon: float,
        dropoff_lat: float,
        dropoff_lon: float,
        distance_m: int,
        hour: int,
    ) -> int:
        """A quote's duration: whole seconds, rounded up, for a route of `distance_m` road
        metres (the straight line times `DETOUR_FACTOR`) between the two points."""
        seconds = self.estimate_s(
            from_lat=pickup_lat,
            from_lon=pickup_lon,
            to_lat=dropoff_lat,
            to_lon=dropoff_lon,
            hour=hour,
            line_m=distance_m / DETOUR_FACTOR,
        )
        # Rounded to the microsecond first so that float noise cannot tip a whole second.
        return max(0, math.ceil(round(seconds, 6)))


def haversine_array(
    lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray
) -> FloatArray:
    """Great-circle distances in metres (`coop.geo.haversine_m`, vectorised)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))


def _midpoints(
    lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray
) -> tuple[FloatArray, FloatArray]:
    # Within a city the plain average of coordinates is the midpoint to a few metres.
    return (lat1 + lat2) / 2, (lon1 + lon2) / 2


def learn(stats: CellStats, *, version: int = 0, k: float = SHRINK_K) -> TravelModel:
    """The model from per-cell-hour sums, shrunk level by level toward the prior (see the module
    docstring). With no statistics at all it is the prior."""
    if k <= 0:
        raise ValueError("the shrinkage strength k must be > 0")
    ok = (stats.distance_m > 0) & (stats.duration_s > 0) & (stats.passages > 0)
    cell, hour = stats.cell[ok], stats.hour[ok] % HOURS
    n = stats.passages[ok].astype(np.float64)
    dist, dur = stats.distance_m[ok], stats.duration_s[ok]
    prior_pace = 1 / PRIOR_SPEED_MPS
    total_n = float(n.sum())
    if total_n == 0:
        return TravelModel.prior(version)
    city = _shrink(float(dur.sum()) / float(dist.sum()), total_n, prior_pace, k)
    hour_n = np.bincount(hour, n, minlength=HOURS)
    hour_dist = np.bincount(hour, dist, minlength=HOURS)
    hour_dur = np.bincount(hour, dur, minlength=HOURS)
    hour_raw = np.divide(hour_dur, hour_dist, out=np.full(HOURS, city), where=hour_dist > 0)
    city_pace = _clamp_pace((hour_n * hour_raw + k * city) / (hour_n + k))
    cells, row = np.unique(cell, return_inverse=True)
    row = row.reshape(-1)
    pace = np.tile(city_pace, (cells.size, 1))
    own = dur / dist
    pace[row, hour] = (n * own + k * city_pace[hour]) / (n + k)
    return TravelModel(
        version=version,
        cells=cells.astype(np.int64),
        pace=_clamp_pace(pace),
        city_pace=city_pace,
        passages=int(total_n),
    )


def _shrink(raw: float, n: float, toward: float, k: float) -> float:
    return (n * raw + k * toward) / (n + k)


@dataclass(frozen=True)
class TrailFix:
    lat: float
    lon: float
    at: datetime


def passages_from_trail(
    fixes: Sequence[TrailFix], *, max_speed_kmh: float, zone: ZoneInfo, time_scale: float = 1.0
) -> Passages:
    """One trip's passages from its trail (oldest first): each believable move between two
    consecutive points, attributed to the cell of its midpoint and the hour it began in, summed
    per cell-hour. Moves the meter would not believe, and gaps over `MAX_SEGMENT_S`, teach
    nothing. `time_scale` is the service's seconds per real second of the trail's timestamps
    (1 but in a sped-up demo, see the module's docstring): durations are learned in the
    service's seconds, and the plausible speed is judged on the real clock as the meter does."""
    if not (math.isfinite(time_scale) and time_scale > 0):
        raise ValueError("time_scale must be a finite number of seconds > 0")
    # The real clock's timings may show `time_scale` times the plausible speed (the meter's rule).
    max_speed_mps = kmh_to_mps(max_speed_kmh) * time_scale
    track = Track()
    sums: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for fix in fixes:
        before = track.reference
        verdict = track.judge(Fix(fix.lat, fix.lon, fix.at), max_speed_mps=max_speed_mps)
        if verdict is not Verdict.moved or before is None:
            continue
        seconds = (fix.at - before.at).total_seconds() * time_scale
        if not 0 < seconds <= MAX_SEGMENT_S:
            continue
        metres = haversine_m(before.lat, before.lon, fix.lat, fix.lon)
        cell = cell_of((before.lat + fix.lat) / 2, (before.lon + fix.lon) / 2)
        if cell < 0:
            continue
        entry = sums[(cell, hour_of_week(before.at, zone))]
        entry[0] += metres
        entry[1] += seconds
    return _passages(sums)


def passages_from_line(
    *,
    from_lat: float,
    from_lon: float,
    to_lat: float,
    to_lon: float,
    distance_m: float,
    duration_s: float,
    hour: int,
) -> Passages:
    """A trip known only by its endpoints (the taxi records): its distance and time shared
    equally among the cells of the straight line between them (one sample every half cell
    edge), as if it had driven at its average speed throughout."""
    if not (distance_m > 0 and duration_s > 0):
        return Passages.empty()
    line = haversine_m(from_lat, from_lon, to_lat, to_lon)
    steps = max(1, math.ceil(line / 250.0))
    cells: list[int] = []
    for i in range(steps + 1):
        f = i / steps
        cell = cell_of(from_lat + (to_lat - from_lat) * f, from_lon + (to_lon - from_lon) * f)
        if cell >= 0 and cell not in cells:
            cells.append(cell)
    if not cells:
        return Passages.empty()
    share = 1 / len(cells)
    sums = {(cell, hour % HOURS): [distance_m * share, duration_s * share] for cell in cells}
    return _passages(sums)


def _passages(sums: dict[tuple[int, int], list[float]]) -> Passages:
    if not sums:
        return Passages.empty()
    keys = list(sums)
    return Passages(
        cell=np.array([c for c, _ in keys], dtype=np.int64),
        hour=np.array([h for _, h in keys], dtype=np.int64),
        distance_m=np.array([sums[key][0] for key in keys], dtype=np.float64),
        duration_s=np.array([sums[key][1] for key in keys], dtype=np.float64),
    )


def concat(parts: Iterable[Passages]) -> Passages:
    items = list(parts)
    if not items:
        return Passages.empty()
    return Passages(
        cell=np.concatenate([p.cell for p in items]),
        hour=np.concatenate([p.hour for p in items]),
        distance_m=np.concatenate([p.distance_m for p in items]),
        duration_s=np.concatenate([p.duration_s for p in items]),
    )
