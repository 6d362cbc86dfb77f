"""The meter: a trip's distance and duration from the driver's reports (pure).

docs/protocol.md: `distance_m` is the sum of the great-circle distances between the driver's
consecutive location reports from `start` to `complete`; `duration_s` the time from `start` to
`complete`. Both are whole numbers, rounded half-up.

Only believable moves are summed (`dispatch.locations.plausibility`): a report implying a speed
above the agreement's `dispatch.max_plausible_speed_kmh` is not metered, and a report that
starts a new stretch (the first one, or one believed after a run of rejected ones) is metered
from nothing. The sum is then capped at what the trip's duration allows at that speed.

Reports are timed by the server's real clock. In a sped-up demo (`COOP_METER_TIME_SCALE`) every
real second is `time_scale` seconds of the service's clock: the trip's duration is already
counted in those seconds, and a car may cover `time_scale` times more road per real second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from coop.geo import haversine_m
from dispatch.locations.plausibility import Fix, Track, Verdict, kmh_to_mps


def distance_m(points: Sequence[tuple[float, float]]) -> int:
    """Sum of great-circle distances between consecutive (lat, lon) points, in whole metres."""
    total = 0.0
    for (a_lat, a_lon), (b_lat, b_lon) in zip(points, points[1:], strict=False):
        total += haversine_m(a_lat, a_lon, b_lat, b_lon)
    return math.floor(total + 0.5)


def duration_s(started_at: datetime, ended_at: datetime) -> int:
    """Whole seconds from start to end (never negative, even with a skewed clock)."""
    return max(0, math.floor((ended_at - started_at).total_seconds() + 0.5))


@dataclass(frozen=True)
class TrailPoint:
    lat: float
    lon: float
    at: datetime  # when the server received it
    segment_start: bool = False  # believed as a new start when it was received


@dataclass(frozen=True)
class Reading:
    distance_m: int  # what is priced
    implausible: int  # reports of the trail not metered because not believable
    trail_distance_m: int  # the believable moves summed, before the cap
    distance_cap_m: int  # what the duration allows at the agreement's speed

    @property
    def distance_capped(self) -> bool:
        return self.trail_distance_m > self.distance_cap_m


def read(
    points: Sequence[TrailPoint],
    *,
    max_speed_kmh: float,
    duration_s: int,
    time_scale: float = 1.0,
) -> Reading:
    """Meters a trail (oldest first) under `max_speed_kmh` for a trip of `duration_s` (in the
    service's seconds: real ones but in a sped-up demo, see the module's docstring)."""
    max_speed_mps = kmh_to_mps(max_speed_kmh)
    real_speed_mps = max_speed_mps * time_scale  # what the real clock's timings may show
    track = Track()
    total = 0.0
    implausible = 0
    for point in points:
        fix = Fix(point.lat, point.lon, point.at)
        before = track.reference
        if point.segment_start:
            track = Track(fix)
            continue
        verdict = track.judge(fix, max_speed_mps=real_speed_mps)
        if verdict is Verdict.moved and before is not None:
            total += haversine_m(before.lat, before.lon, fix.lat, fix.lon)
        elif verdict is Verdict.implausible:
            implausible += 1
    trail_m = math.floor(total + 0.5)
    cap_m = math.floor(max_speed_mps * duration_s)
    return Reading(
        distance_m=min(trail_m, cap_m),
        implausible=implausible,
        trail_distance_m=trail_m,
        distance_cap_m=cap_m,
    )
