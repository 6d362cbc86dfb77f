"""Ride-check benchmark: the detectors of `dispatch.safety.ridecheck` over real New York trips and
the simulated city, for their false-alarm rates, and over injected incidents, for how soon each
one fires.

Ordinary trips. The yellow-taxi trips of `loadtests/data/` (provenance in its SOURCES.md) give
each trip's true pickup, dropoff, duration and metered distance; what the file lacks is the path
between, so the car drives the street grid (Manhattan's, at 29 degrees, `server.simulator.movement`
`grid_route`), and the metered distance beyond the grid route's is driven as loops around blocks
(back towards the pickup by up to `LOOP_BACK_M`, then on again): the detours the away detector must
not call a drive away. The trip takes its true duration: red lights (a stop at one intersection in
`LIGHT_EVERY_M` on average, 10 to 90 s each) as far as the time allows, and the rest of the delay
spread as slower driving. The simulated city does the same with the simulator's own trips in
Montréal (pickups around downtown, destinations 1 to 10 km away, the simulator's 8 to 12 m/s).
A driver's app reports every `REPORT_EVERY_S`, with GPS error (`GPS_SIGMA_M`, and one fix in
`CANYON_SHARE` thrown `CANYON_SIGMA_M`, a street canyon's).

Incidents, injected into the same trips: a 10-minute stop mid-trip; a drive straight away from the
destination for 10 minutes; a trip not started for 20 minutes after the arrival (checked at each
sweep, every `ridecheck_socket.SWEEP_INTERVAL_S`); an end 1 km short of the destination.

    python -m loadtests.bench_ridecheck             # the figures into docs/safety.md
    python -m loadtests.bench_ridecheck --no-write  # printed only
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bargaining.terms import load_founding_terms
from coop.geo import ServiceArea
from coop.settings import PACKAGE_DIR
from dispatch.realtime.ridecheck_socket import SWEEP_INTERVAL_S
from dispatch.safety import ridecheck
from dispatch.safety.ridecheck import Detector, Thresholds, Watch
from loadtests.realdemand import TaxiTrip, new_york, yellow_trips
from server.simulator.movement import (
    DOWNTOWN_MONTREAL,
    MONTREAL_GRID_BEARING_DEG,
    Point,
    bearing_deg,
    distance_m,
    grid_route,
    move_towards,
    offset,
    random_destination,
    random_point_near,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "safety.md"
BEGIN, END = "<!-- bench_ridecheck: begin -->", "<!-- bench_ridecheck: end -->"
MANHATTAN_GRID_BEARING_DEG = 29.0
REPORT_EVERY_S = 4.0
GPS_SIGMA_M = 5.0
CANYON_SHARE = 0.05
CANYON_SIGMA_M = 25.0
FREE_SPEED_MPS = 11.0  # about 40 km/h between lights
LIGHT_EVERY_M = 400.0
LIGHT_MIN_S, LIGHT_MAX_S = 10.0, 90.0
LOOP_BACK_M = 250.0
LOOP_SIDE_M = 80.0
INCIDENT_S = 600.0
NOT_STARTED_WAIT_S = 1200.0
END_SHORT_M = 1000.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Leg:
    """Drive to `to` at `speed_mps`, then stand `stop_s` there."""

    to: Point
    speed_mps: float
    stop_s: float = 0.0


def _gps(rng: random.Random, point: Point) -> Point:
    sigma = CANYON_SIGMA_M if rng.random() < CANYON_SHARE else GPS_SIGMA_M
    return offset(point, north_m=rng.gauss(0, sigma), east_m=rng.gauss(0, sigma))


def _fixes(
    rng: random.Random, start: Point, legs: list[Leg], t0: float = 0.0
) -> list[tuple[float, Point]]:
    """The true track sampled every REPORT_EVERY_S: (seconds, position with GPS error)."""
    fixes: list[tuple[float, Point]] = []
    here, t, next_fix = start, t0, t0
    for leg in legs:
        while True:
            left_m = distance_m(here, leg.to)
            if left_m <= 0.5:
                break
            step_s = min(next_fix - t, left_m / leg.speed_mps) if next_fix > t else 0.0
            if step_s <= 0.0:
                fixes.append((t, _gps(rng, here)))
                next_fix = t + REPORT_EVERY_S
                continue
            here = move_towards(here, leg.to, step_s * leg.speed_mps)
            t += step_s
        end_stop = t + leg.stop_s
        while next_fix <= end_stop:
            fixes.append((next_fix, _gps(rng, here)))
            next_fix += REPORT_EVERY_S
        t = end_stop
    fixes.append((t, _gps(rng, here)))
    return fixes


def _with_loops(
    rng: random.Random, start: Point, route: list[Point], extra_m: float
) -> list[Point]:
    """The route with `extra_m` driven as loops around blocks at random places along it."""
    points = [start, *route]
    loops = min(4, math.floor(extra_m / (2 * LOOP_SIDE_M + 2 * 60.0)))
    if loops <= 0:
        return route
    back_m = min(LOOP_BACK_M, (extra_m / loops - 2 * LOOP_SIDE_M) / 2)
    out: list[Point] = []
    places = sorted(rng.random() for _ in range(loops))
    lengths = [distance_m(a, b) for a, b in zip(points, points[1:], strict=False)]
    total = sum(lengths)
    done_m, place = 0.0, 0
    for (a, b), length in zip(zip(points, points[1:], strict=False), lengths, strict=True):
        while place < loops and places[place] * total <= done_m + length:
            at = move_towards(a, b, places[place] * total - done_m)
            heading = math.radians(bearing_deg(a, b))
            side = (math.cos(heading + math.pi / 2), math.sin(heading + math.pi / 2))
            back = (-math.cos(heading), -math.sin(heading))
            corner1 = offset(at, north_m=side[0] * LOOP_SIDE_M, east_m=side[1] * LOOP_SIDE_M)
            corner2 = offset(corner1, north_m=back[0] * back_m, east_m=back[1] * back_m)
            corner3 = offset(corner2, north_m=-side[0] * LOOP_SIDE_M, east_m=-side[1] * LOOP_SIDE_M)
            out += [at, corner1, corner2, corner3, at]
            place += 1
        out.append(b)
        done_m += length
    return out


def _legs(rng: random.Random, start: Point, path: list[Point], duration_s: float) -> list[Leg]:
    """The path in `duration_s`: lights as far as time allows, the rest as slower driving."""
    length = sum(distance_m(a, b) for a, b in zip([start, *path], path, strict=False))
    delay_s = max(0.0, duration_s - length / FREE_SPEED_MPS)
    pieces: list[Point] = []
    prev = start
    for point in path:  # cut into ~100 m pieces, each ending at a possible light
        pieces_n = max(1, math.ceil(distance_m(prev, point) / 100.0))
        pieces += [
            move_towards(prev, point, distance_m(prev, point) * i / pieces_n)
            for i in range(1, pieces_n + 1)
        ]
        prev = point
    stops: list[float] = []
    light_budget = delay_s * rng.uniform(0.3, 0.7)
    for _ in pieces:
        stop = 0.0
        if light_budget > 0 and rng.random() < 100.0 / LIGHT_EVERY_M:
            stop = min(light_budget, rng.uniform(LIGHT_MIN_S, LIGHT_MAX_S))
            light_budget -= stop
        stops.append(stop)
    driving_s = max(1.0, duration_s - sum(stops))
    speed = max(0.5, length / driving_s)
    return [Leg(point, speed, stop) for point, stop in zip(pieces, stops, strict=True)]


@dataclass
class Trip:
    start: Point
    end: Point
    path: list[Point]
    duration_s: float


def _watch(
    limits: Thresholds, end: Point, fixes: list[tuple[float, Point]]
) -> tuple[Watch, list[ridecheck.Firing]]:
    watch, fired = Watch(), []
    for seconds, point in fixes:
        fired += ridecheck.observe(
            watch,
            limits,
            lat=point.lat,
            lon=point.lon,
            at=T0 + timedelta(seconds=seconds),
            destination=(end.lat, end.lon),
        )
    return watch, fired


def _ended(limits: Thresholds, watch: Watch, end: Point) -> ridecheck.Firing | None:
    last = None
    if watch.last_lat is not None and watch.last_lon is not None:
        last = (watch.last_lat, watch.last_lon)
    return ridecheck.ended(watch, limits, at=T0, position=last, destination=(end.lat, end.lon))


def _not_started(limits: Thresholds, wait_s: float) -> float | None:
    """When (seconds after the arrival) the sweep first asks about a rider not boarded."""
    watch, t = Watch(), 0.0
    while t <= wait_s:
        if ridecheck.not_started(
            watch, limits, arrived_at=T0, now=T0 + timedelta(seconds=t), position=None
        ):
            return t
        t += SWEEP_INTERVAL_S
    return None


CODES = " (the code's)"
# The drive away's hysteresis (exit, enter band in metres): none, half, and the code's.
AWAY_VARIANTS = ((0.0, 0.0), (50.0, 150.0), (ridecheck.AWAY_EXIT_M, ridecheck.AWAY_ENTER_M))


@dataclass
class Result:
    trips: int
    fired: dict[str, int]
    examples: dict[str, list[str]]
    away_by_band: dict[tuple[float, float], int]


def ordinary(rng: random.Random, limits: Thresholds, trips: list[Trip], label: str) -> Result:
    fired = {d.value: 0 for d in Detector}
    examples: dict[str, list[str]] = {d.value: [] for d in Detector}
    by_band = dict.fromkeys(AWAY_VARIANTS, 0)
    for index, trip in enumerate(trips):
        fixes = _fixes(rng, trip.start, _legs(rng, trip.start, trip.path, trip.duration_s))
        for band in AWAY_VARIANTS:
            variant = replace(limits, away_exit_m=band[0], away_enter_m=band[1])
            _, away = _watch(variant, trip.end, fixes)
            by_band[band] += sum(1 for f in away if f.detector is Detector.away)
        watch, firings = _watch(limits, trip.end, fixes)
        end = _ended(limits, watch, trip.end)
        for firing in [*firings, *([end] if end else [])]:
            fired[firing.detector.value] += 1
            if len(examples[firing.detector.value]) < 3:
                examples[firing.detector.value].append(f"{label} #{index}: {firing.detail}")
    # Boarding: the simulator's 15 to 60 s, and a quarter of riders slow, up to 4 minutes.
    for _ in trips:
        wait_s = rng.uniform(15, 60) if rng.random() < 0.75 else rng.uniform(60, 240)
        if _not_started(limits, wait_s) is not None:
            fired[Detector.not_started.value] += 1
    return Result(len(trips), fired, examples, by_band)


def incidents(
    rng: random.Random, limits: Thresholds, trips: list[Trip]
) -> dict[str, list[float | None]]:
    """Seconds from each incident's start to its check (None: never asked)."""
    found: dict[str, list[float | None]] = {d.value: [] for d in Detector}
    for trip in trips:
        legs = _legs(rng, trip.start, trip.path, trip.duration_s)
        cut = rng.randrange(max(1, len(legs) // 5), max(2, 4 * len(legs) // 5))
        head, tail = legs[:cut], legs[cut:]
        before = _fixes(rng, trip.start, head)
        at_s, where = before[-1][0], head[-1].to if head else trip.start
        # A 10-minute stop there, then on.
        stop = [Leg(where, 1.0, INCIDENT_S), *tail]
        fixes = before + _fixes(rng, where, stop, at_s)[1:]
        _, firings = _watch(limits, trip.end, fixes)
        hit = [f for f in firings if f.detector is Detector.stopped]
        found["stopped"].append((hit[0].at - T0).total_seconds() - at_s if hit else None)
        # Straight away from the destination for 10 minutes at 8 m/s.
        heading = math.radians(bearing_deg(trip.end, where))
        far = offset(
            where,
            north_m=math.cos(heading) * 8 * INCIDENT_S,
            east_m=math.sin(heading) * 8 * INCIDENT_S,
        )
        fixes = before + _fixes(rng, where, [Leg(far, 8.0)], at_s)[1:]
        _, firings = _watch(limits, trip.end, fixes)
        hit = [f for f in firings if f.detector is Detector.away]
        found["away"].append((hit[0].at - T0).total_seconds() - at_s if hit else None)
        # Ended 1 km short (trips long enough to have such a point).
        if distance_m(trip.start, trip.end) > END_SHORT_M + 200:
            short = move_towards(trip.end, trip.start, END_SHORT_M)
            fixes = _fixes(rng, trip.start, [Leg(short, 8.0)])
            watch, _ = _watch(limits, trip.end, fixes)
            found["end_far"].append(0.0 if _ended(limits, watch, trip.end) else None)
        found["not_started"].append(_not_started(limits, NOT_STARTED_WAIT_S))
    return found


def new_york_trips(rng: random.Random, area: ServiceArea, max_kmh: float) -> list[Trip]:
    trips = []
    for taxi in yellow_trips(area):
        if not _believable(taxi, max_kmh):
            continue
        start, end = (
            Point(taxi.pickup_lat, taxi.pickup_lon),
            Point(taxi.dropoff_lat, taxi.dropoff_lon),
        )
        route = grid_route(start, end, area=area, grid_bearing_deg=MANHATTAN_GRID_BEARING_DEG)
        grid_m = sum(distance_m(a, b) for a, b in zip([start, *route], route, strict=False))
        path = _with_loops(rng, start, route, taxi.distance_m - grid_m)
        trips.append(Trip(start, end, path, taxi.duration_s))
    return trips


def _believable(taxi: TaxiTrip, max_kmh: float) -> bool:
    """A trip the service would have metered: it moved, within the plausible speed, in 3 h."""
    return (
        60 <= taxi.duration_s <= 3 * 3600
        and taxi.distance_m >= 200
        and taxi.distance_m / taxi.duration_s * 3.6 <= max_kmh
    )


def montreal_trips(rng: random.Random, count: int) -> list[Trip]:
    area = ServiceArea.from_file(PACKAGE_DIR / "data" / "montreal.geojson")
    center = Point(*DOWNTOWN_MONTREAL)
    trips = []
    for _ in range(count):
        start = random_point_near(rng, area, center=center, spread_m=3000)
        end = random_destination(rng, area, start, min_m=1000, max_m=10_000)
        path = grid_route(start, end, area=area, grid_bearing_deg=MONTREAL_GRID_BEARING_DEG)
        length = sum(distance_m(a, b) for a, b in zip([start, *path], path, strict=False))
        trips.append(
            Trip(start, end, path, length / rng.uniform(8.0, 12.0) * rng.uniform(1.0, 1.6))
        )
    return trips


def _per_1000(count: int, trips: int) -> str:
    return f"{1000 * count / trips:.1f}" if trips else "-"


def _latency(values: list[float | None], bound_s: float) -> str:
    hits = sorted(v for v in values if v is not None)
    if not hits:
        return f"0 of {len(values)} | - | -"
    p95 = hits[min(len(hits) - 1, math.ceil(0.95 * len(hits)) - 1)]
    within = sum(1 for v in hits if v <= bound_s)
    return (
        f"{len(hits)} of {len(values)} | {min(hits):.0f} / {statistics.median(hits):.0f} / "
        f"{p95:.0f} / {max(hits):.0f} s | {within} ({100 * within / len(values):.1f} %) within "
        f"{bound_s:g} s"
    )


def report(
    seed: int, timed: Callable[[], tuple[Result, Result, dict[str, list[float | None]]]]
) -> str:
    began = time.perf_counter()
    nyc, mtl, injected = timed()
    took_s = time.perf_counter() - began
    limits = Thresholds.of(load_founding_terms().safety)
    rows = [
        "| detector | term | New York taxi trips, per 1,000 | simulated Montréal, per 1,000 |",
        "|---|---|---|---|",
    ]
    terms = {
        "stopped": f"`stop_alert_s` {limits.stop_alert_s:g} s within `stop_radius_m` "
        f"{limits.stop_radius_m:g} m",
        "away": f"`away_alert_s` {limits.away_alert_s:g} s (hysteresis "
        f"{ridecheck.AWAY_EXIT_M:g} / {ridecheck.AWAY_ENTER_M:g} m)",
        "not_started": f"`not_started_alert_s` {limits.not_started_alert_s:g} s",
        "end_far": f"`end_distance_m` {limits.end_distance_m:g} m",
    }
    for detector in Detector:
        rows.append(
            f"| `{detector.value}` | {terms[detector.value]} | "
            f"{_per_1000(nyc.fired[detector.value], nyc.trips)} ({nyc.fired[detector.value]}) | "
            f"{_per_1000(mtl.fired[detector.value], mtl.trips)} ({mtl.fired[detector.value]}) |"
        )
    stop_bound_s = limits.stop_alert_s + 2 * REPORT_EVERY_S
    away_bound_s = limits.away_alert_s + ridecheck.AWAY_EXIT_M / 8 + 2 * REPORT_EVERY_S
    late_bound_s = limits.not_started_alert_s + SWEEP_INTERVAL_S
    incident_rows = [
        "| incident | asked | delay after it began: min / median / p95 / max | on time |",
        "|---|---|---|---|",
        f"| a 10-minute stop mid-trip | {_latency(injected['stopped'], stop_bound_s)} |",
        "| 10 minutes driving away from the destination at 8 m/s | "
        f"{_latency(injected['away'], away_bound_s)} |",
        "| not started 20 minutes after the arrival | "
        f"{_latency(injected['not_started'], late_bound_s)} |",
        f"| ended 1 km short of the destination | {_latency(injected['end_far'], 0.0)} |",
        "",
        f"On time: a stop within `stop_alert_s` and two reports ({stop_bound_s:g} s: the first "
        "position at the spot may come a report after the car stood still); a drive away within "
        f"`away_alert_s` once it is {ridecheck.AWAY_EXIT_M:g} m farther than its best (at 8 m/s, "
        f"{ridecheck.AWAY_EXIT_M / 8:g} s) and two reports ({away_bound_s:g} s); a trip not "
        f"started within `not_started_alert_s` and one sweep ({late_bound_s:g} s); an end far "
        "away at the end. In service a sweep (5 s) and a flush (250 ms) add to the first two.",
    ]
    bands = [
        "| hysteresis (episode from / fires beyond, m) | New York, per 1,000 "
        "| Montréal, per 1,000 |",
        "|---|---|---|",
        *(
            f"| {band[0]:g} / {band[1]:g}{CODES if band == AWAY_VARIANTS[-1] else ''} | "
            f"{_per_1000(nyc.away_by_band[band], nyc.trips)} ({nyc.away_by_band[band]}) | "
            f"{_per_1000(mtl.away_by_band[band], mtl.trips)} ({mtl.away_by_band[band]}) |"
            for band in AWAY_VARIANTS
        ),
    ]
    examples = [
        f"- {example}"
        for result in (nyc, mtl)
        for values in result.examples.values()
        for example in values
    ]
    return "\n".join(
        [
            BEGIN,
            f"`make bench-ridecheck` (seed {seed}; {took_s:.0f} s): {nyc.trips:,} New York "
            f"yellow-taxi trips and {mtl.trips:,} simulated Montréal trips, each driven once as "
            "it was and once with each incident.",
            "",
            "Checks asked on ordinary trips (the false alarms):",
            "",
            *rows,
            "",
            "The drive away on the same ordinary trips, with less hysteresis:",
            "",
            *bands,
            "",
            "Injected incidents, on the New York trips:",
            "",
            *incident_rows,
            *(
                ["", "What fired on ordinary trips (the first few):", "", *examples]
                if examples
                else []
            ),
            END,
        ]
    )


def write(doc: Path, section: str) -> None:
    text = doc.read_text(encoding="utf-8")
    if BEGIN in text:
        start, end = text.index(BEGIN), text.index(END) + len(END)
        text = text[:start] + section + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench_ridecheck", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seed", type=int, default=25)
    parser.add_argument("--montreal-trips", type=int, default=2000)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    terms = load_founding_terms()
    limits = Thresholds.of(terms.safety)

    def run() -> tuple[Result, Result, dict[str, list[float | None]]]:
        rng = random.Random(args.seed)
        nyc_trips = new_york_trips(rng, new_york(), float(terms.dispatch.max_plausible_speed_kmh))
        mtl_trips = montreal_trips(rng, args.montreal_trips)
        return (
            ordinary(rng, limits, nyc_trips, "New York"),
            ordinary(rng, limits, mtl_trips, "Montréal"),
            incidents(rng, limits, nyc_trips),
        )

    section = report(args.seed, run)
    print(section)
    if not args.no_write:
        write(DOC, section)
        print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
