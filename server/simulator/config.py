"""The simulated city's knobs, and the small random choices its people make (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from coop.settings import DEV_ADMIN_TOKEN, PACKAGE_DIR
from server.simulator.movement import MONTREAL_GRID_BEARING_DEG, Point

# Most rides are rated well; a few are not. Weights of 5, 4, 3, 2 and 1 stars.
STAR_WEIGHTS = (60, 25, 10, 3, 2)
# Tags from reputation's documented list; some name causes outside the driver's control.
GOOD_RATING_TAGS = ("friendly", "clean_vehicle", "smooth_driving", "good_route")
LOW_RATING_TAGS = ("traffic", "pricing", "late_pickup", "wrong_route", "weather", "road_closure")


@dataclass(frozen=True)
class SimulationConfig:
    """Everything a run needs; times marked `sim` are simulated seconds (real = sim / speedup)."""

    base_url: str = "http://127.0.0.1:8000"
    admin_token: str = DEV_ADMIN_TOKEN
    service_area: Path = PACKAGE_DIR / "data" / "montreal.geojson"
    drivers: int = 50
    rate_per_min: float = 12.0  # rider requests per minute of wall-clock time (Poisson)
    speedup: float = 8.0
    # The service's clock (its COOP_METER_TIME_SCALE): seconds it counts per real second. The
    # demo runs it at `speedup`, so the cars' simulated speeds are the speeds it believes.
    service_time_scale: float = 1.0
    duration_s: float | None = None  # wall-clock seconds; None runs until stopped
    max_requests: int | None = None  # stop requesting after this many; the run ends once all end
    seed: int | None = None
    center: Point | None = None  # where the city is busiest; None: downtown or the area's middle
    spread_m: float = 4000.0  # sigma of the busy area around the centre
    trip_min_m: float = 1000.0
    trip_max_m: float = 6000.0
    grid_bearing_deg: float = MONTREAL_GRID_BEARING_DEG
    speed_min_mps: float = 8.0
    speed_max_mps: float = 12.0
    location_interval_s: float = 4.0  # sim; between location frames while roaming
    trip_location_interval_s: float = 2.0  # sim; on the way to a pickup and on a trip
    # real; a high speedup never floods the service (which takes one per 100 ms on average at most)
    min_frame_interval_s: float = 0.5
    accessible_share: float = 0.15  # of the drivers, whose vehicle is wheelchair accessible
    wheelchair_share: float = 0.03  # of the requests, that need an accessible vehicle
    decline_rate: float = 0.1
    cancel_rate: float = 0.08
    rating_rate: float = 0.8
    pin_share: float = 0.3  # of the riders, who ask for a PIN at every pickup (docs/safety.md)
    trip_share: float = 0.2  # of the riders, who share their trip once a driver takes it
    think_min_s: float = 1.0  # sim; a driver reads an offer before answering it
    think_max_s: float = 4.0
    boarding_min_s: float = 15.0  # sim; from arriving at the pickup to starting the trip
    boarding_max_s: float = 60.0
    patience_min_s: float = 10.0  # sim; when a rider who cancels does so, after the request
    patience_max_s: float = 120.0
    summary_interval_s: float = 5.0  # real

    def __post_init__(self) -> None:
        problems = []
        if self.drivers < 0:
            problems.append("drivers must be 0 or more")
        if self.rate_per_min < 0:
            problems.append("rate must be 0 or more requests per minute")
        if self.speedup <= 0:
            problems.append("speedup must be positive")
        if self.service_time_scale <= 0:
            problems.append("service time scale must be positive")
        if self.duration_s is not None and self.duration_s <= 0:
            problems.append("duration must be positive")
        if self.max_requests is not None and self.max_requests < 0:
            problems.append("max requests must be 0 or more")
        for name in (
            "accessible_share",
            "wheelchair_share",
            "decline_rate",
            "cancel_rate",
            "rating_rate",
            "pin_share",
            "trip_share",
        ):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name.replace('_', ' ')} must be between 0 and 1")
        for low, high in (
            ("trip_min_m", "trip_max_m"),
            ("speed_min_mps", "speed_max_mps"),
            ("think_min_s", "think_max_s"),
            ("boarding_min_s", "boarding_max_s"),
            ("patience_min_s", "patience_max_s"),
        ):
            if not 0 <= getattr(self, low) <= getattr(self, high):
                problems.append(f"need 0 <= {low} <= {high}")
        if self.speed_min_mps <= 0:
            problems.append("speed_min_mps must be positive")
        for name in ("location_interval_s", "trip_location_interval_s", "summary_interval_s"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive")
        if problems:
            raise ValueError("; ".join(problems))

    def real_s(self, sim_s: float) -> float:
        """Wall-clock seconds for `sim_s` simulated seconds."""
        return sim_s / self.speedup

    def frame_interval_s(self, *, busy: bool) -> float:
        """Wall-clock seconds between two location frames of a driver."""
        sim_s = self.trip_location_interval_s if busy else self.location_interval_s
        return max(self.min_frame_interval_s, self.real_s(sim_s))


def accepts_offer(rng: random.Random, decline_rate: float) -> bool:
    """Whether a driver takes an offer; declining costs nothing, so some simply do."""
    return rng.random() >= decline_rate


def rider_patience_s(rng: random.Random, config: SimulationConfig) -> float | None:
    """Simulated seconds after which this rider cancels if still waiting; None: never cancels."""
    if rng.random() >= config.cancel_rate:
        return None
    return rng.uniform(config.patience_min_s, config.patience_max_s)


def rating_for(rng: random.Random) -> dict[str, object]:
    """A rider's rating of a finished trip, as the rating endpoint takes it."""
    stars = rng.choices((5, 4, 3, 2, 1), weights=STAR_WEIGHTS)[0]
    rating: dict[str, object] = {"stars": stars}
    if stars <= 3:
        rating["tags"] = rng.sample(LOW_RATING_TAGS, k=rng.randint(1, 2))
    elif rng.random() < 0.3:
        rating["tags"] = rng.sample(GOOD_RATING_TAGS, k=1)
    if stars == 5 and rng.random() < 0.3:
        rating["comment"] = rng.choice(("Smooth ride, thanks!", "Friendly and on time."))
    return rating
