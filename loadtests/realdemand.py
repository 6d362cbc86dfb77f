"""Real New York demand for benchmarks: the shipped sample of `dispatch.matching.sample_demand`
(it moved there so that a proposal's impact can be replayed on the sample days in service)."""

from dispatch.matching.sample_demand import (
    DATA_DIR,
    MILE_M,
    NEW_YORK_AREA,
    UBER_PICKUPS,
    YELLOW_TRIPS,
    Pickup,
    TaxiTrip,
    new_york,
    uber_pickups,
    yellow_trips,
)

__all__ = [
    "DATA_DIR",
    "MILE_M",
    "NEW_YORK_AREA",
    "UBER_PICKUPS",
    "YELLOW_TRIPS",
    "Pickup",
    "TaxiTrip",
    "new_york",
    "uber_pickups",
    "yellow_trips",
]
