"""The New York sample days a proposal's impact is replayed on when the co-op's own history is too
short (labelled as such wherever shown): the fairness benchmark's days (docs/fairness.md)."""

from __future__ import annotations

import functools
import math

import numpy as np

from dispatch.matching.replay import Day
from dispatch.matching.sample_demand import new_york, uber_pickups, yellow_trips

EARTH_M_PER_DEG = 111_320.0
# The benchmark's day: 10 hours from 8:00, 400 drivers on shifts of 4 to 9 h, 15 % of the
# April 2014 Uber pickups folded onto one day; one seed per day of the sample week.
SAMPLE_SEEDS = (14, 15, 16, 17, 18, 19, 20)
HOURS = 10.0
START_HOUR = 8
DRIVERS = 400
DEMAND_SHARE = 0.15


@functools.lru_cache(maxsize=1)
def _sources() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pickups' seconds of the day and places, and the usable taxi trips' displacement,
    duration and metered distance (read once per process: about a second)."""
    area = new_york()
    pickups = uber_pickups(area)
    lat0 = float(np.mean([p.lat for p in pickups]))
    lon0 = float(np.mean([p.lon for p in pickups]))
    kx = EARTH_M_PER_DEG * math.cos(math.radians(lat0))
    seconds = np.array([p.at.hour * 3600 + p.at.minute * 60 + p.at.second for p in pickups], float)
    places = np.array([((p.lon - lon0) * kx, (p.lat - lat0) * EARTH_M_PER_DEG) for p in pickups])
    trips = [t for t in yellow_trips(area) if 60 <= t.duration_s <= 3 * 3600 and t.distance_m > 0]
    displacement = np.array(
        [
            ((t.dropoff_lon - t.pickup_lon) * kx, (t.dropoff_lat - t.pickup_lat) * EARTH_M_PER_DEG)
            for t in trips
        ]
    )
    duration = np.array([t.duration_s for t in trips], float)
    distance = np.array([t.distance_m for t in trips], float)
    return seconds, places, displacement, duration, distance


def sample_day(seed: int) -> Day:
    """One sample day, the same for the same seed."""
    seconds, places, displacement, duration, distance = _sources()
    rng = np.random.default_rng(seed)
    start = START_HOUR * 3600.0
    in_day = (seconds >= start) & (seconds < start + HOURS * 3600)
    keep = in_day & (rng.random(len(seconds)) < DEMAND_SHARE)
    # The pickups are given to the minute: spread each within its minute.
    at = seconds[keep] - start + rng.random(int(keep.sum())) * 60.0
    order = np.argsort(at, kind="stable")
    at, pickup = at[order], places[keep][order]
    drawn = rng.integers(0, len(duration), size=len(at))
    horizon = HOURS * 3600.0
    shift_len = rng.uniform(4 * 3600, 9 * 3600, size=DRIVERS)
    shift_start = np.maximum(rng.uniform(-3600, horizon - 3 * 3600, size=DRIVERS), 0.0)
    return Day(
        label=f"New York sample day {seed}",
        request_at_s=at,
        pickup_xy=pickup,
        dropoff_xy=pickup + displacement[drawn],
        trip_distance_m=distance[drawn],
        trip_s=duration[drawn],
        shift_start_s=shift_start,
        shift_end_s=np.minimum(shift_start + shift_len, horizon),
        driver_xy=places[rng.integers(0, len(places), size=DRIVERS)],
    )


def sample_week() -> list[Day]:
    return [sample_day(seed) for seed in SAMPLE_SEEDS]
