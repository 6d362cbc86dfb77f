"""The meter: a trip's distance and duration from the driver's reports (pure).

docs/protocol.md: `distance_m` is the sum of the great-circle distances between the driver's
consecutive location reports from `start` to `complete`; `duration_s` the time from `start` to
`complete`. Both are whole numbers, rounded half-up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from dispatch.core.geo import haversine_m


def distance_m(points: Sequence[tuple[float, float]]) -> int:
    """Sum of great-circle distances between consecutive (lat, lon) points, in whole metres."""
    total = 0.0
    for (a_lat, a_lon), (b_lat, b_lon) in zip(points, points[1:], strict=False):
        total += haversine_m(a_lat, a_lon, b_lat, b_lon)
    return math.floor(total + 0.5)


def duration_s(started_at: datetime, ended_at: datetime) -> int:
    """Whole seconds from start to end (never negative, even with a skewed clock)."""
    return max(0, math.floor((ended_at - started_at).total_seconds() + 0.5))
