"""ETA benchmark: the learned travel-time model against the constant speeds, on real taxi trips.

The real New York yellow-taxi trips of `dispatch/matching/data/` (true pickup and dropoff times, the
taximeter's distance) are split alternately, in pickup order, into a training half and a test
half. The model is learned from the training half with the service's own learning function
(`dispatch.matching.traveltime.learn`); the taxi records have no trails, so each training trip
is turned into passages by `traveltime.passages_from_line`: its metered distance and true
duration shared equally among the H3 cells its straight line crosses (sampled every 250 m), at
the hour of the week of its pickup. Trips whose average speed the meter would not believe (over
the founding agreement's `dispatch.max_plausible_speed_kmh`) teach nothing and are not tested.

On the test half it reports the median absolute percentage error (MdAPE) of trip duration for
the learned model, the matcher's old constant (30 km/h x 1.3), the quote's old constant (25 km/h
x 1.3), and a city-wide learned speed with no cells (what the cells add); then the same for the
quote's total under the founding terms against the fare of the real duration and distance, and
how often the real fare would have been above the quote's cap. Then the sensitivity to the
shrinkage strength k and to the H3 resolution.

    python -m loadtests.bench_eta            # writes its figures into docs/eta.md
    python -m loadtests.bench_eta --no-write
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from bargaining import fares
from bargaining.terms import load_founding_terms
from dispatch.matching import traveltime
from dispatch.matching.traveltime import CellStats, TravelModel
from loadtests.realdemand import TaxiTrip, new_york, yellow_trips

DOC = Path(__file__).resolve().parents[1] / "docs" / "eta.md"
BEGIN, END = "<!-- bench_eta: begin -->", "<!-- bench_eta: end -->"
# The old constants, as they were before the model.
MATCHER_SPEED_MPS = 8.3
MIN_DURATION_S, MAX_DURATION_S = 60.0, 3 * 3600.0
MIN_LINE_M = 100.0


@dataclass(frozen=True)
class Split:
    train: list[TaxiTrip]
    test: list[TaxiTrip]
    dropped: int


def hour_of(trip: TaxiTrip) -> int:
    """The hour of the week of the pickup (the records are New York local time already)."""
    return trip.pickup_at.weekday() * 24 + trip.pickup_at.hour


def line_m(trip: TaxiTrip) -> float:
    return float(
        traveltime.haversine_array(
            np.array([trip.pickup_lat]),
            np.array([trip.pickup_lon]),
            np.array([trip.dropoff_lat]),
            np.array([trip.dropoff_lon]),
        )[0]
    )


def split(trips: Sequence[TaxiTrip], max_speed_kmh: float) -> Split:
    """Believable trips alternately into training and test halves, in pickup order."""
    kept = [
        t
        for t in trips
        if MIN_DURATION_S <= t.duration_s <= MAX_DURATION_S
        and line_m(t) >= MIN_LINE_M
        and t.distance_m > 0
        and t.distance_m / t.duration_s * 3.6 <= max_speed_kmh
    ]
    return Split(kept[0::2], kept[1::2], len(trips) - len(kept))


def passages(trips: Sequence[TaxiTrip]) -> traveltime.Passages:
    return traveltime.concat(
        traveltime.passages_from_line(
            from_lat=t.pickup_lat,
            from_lon=t.pickup_lon,
            to_lat=t.dropoff_lat,
            to_lon=t.dropoff_lon,
            distance_m=t.distance_m,
            duration_s=t.duration_s,
            hour=hour_of(t),
        )
        for t in trips
    )


def train(trips: Sequence[TaxiTrip], k: float = traveltime.SHRINK_K) -> TravelModel:
    return traveltime.learn(CellStats.of(passages(trips)), version=1, k=k)


def city_only(model: TravelModel) -> TravelModel:
    """The same model with its cells forgotten: only the city-wide speed of each hour."""
    return TravelModel(
        version=model.version,
        cells=np.zeros(0, np.int64),
        pace=np.zeros((0, traveltime.HOURS)),
        city_pace=model.city_pace,
    )


def quoted_route(trip: TaxiTrip, model: TravelModel | None) -> tuple[int, int]:
    """(distance_m, duration_s) as the quote estimates them, with the model or the constant."""
    duration: fares.RouteDuration | None = None
    if model is not None:
        hour = hour_of(trip)

        def duration_of(
            *,
            pickup_lat: float,
            pickup_lon: float,
            dropoff_lat: float,
            dropoff_lon: float,
            distance_m: int,
        ) -> int:
            return model.route_duration_s(
                pickup_lat=pickup_lat,
                pickup_lon=pickup_lon,
                dropoff_lat=dropoff_lat,
                dropoff_lon=dropoff_lon,
                distance_m=distance_m,
                hour=hour,
            )

        duration = duration_of
    return fares.estimate_route(
        pickup_lat=trip.pickup_lat,
        pickup_lon=trip.pickup_lon,
        dropoff_lat=trip.dropoff_lat,
        dropoff_lon=trip.dropoff_lon,
        duration=duration,
    )


def mdape(estimate: Sequence[float], truth: Sequence[float]) -> float:
    e, t = np.asarray(estimate, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    return float(np.median(np.abs(e - t) / t) * 100)


def median_bias(estimate: Sequence[float], truth: Sequence[float]) -> float:
    e, t = np.asarray(estimate, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    return float(np.median((e - t) / t) * 100)


@dataclass
class Estimator:
    name: str
    durations: list[float]
    quote_totals: list[Decimal]
    capped: int = 0


def evaluate(test: Sequence[TaxiTrip], model: TravelModel) -> tuple[list[Estimator], list[float]]:
    terms = load_founding_terms()
    city = city_only(model)
    rows = [
        Estimator("matcher's constant: 30 km/h x 1.3", [], []),
        Estimator("quote's constant: 25 km/h x 1.3", [], []),
        Estimator("learned, city-wide speed only (no cells)", [], []),
        Estimator("learned model (cells x hour of week)", [], []),
    ]
    real_fares = []
    for trip in test:
        real = fares.price_trip(
            terms,
            agreement_version=1,
            service_class=fares.STANDARD,
            distance_m=round(trip.distance_m),
            duration_s=round(trip.duration_s),
        ).total
        real_fares.append(float(real))
        line = line_m(trip)
        estimates: list[tuple[float, tuple[int, int]]] = [
            (line * 1.3 / MATCHER_SPEED_MPS, _route_at(trip, line * 1.3 / MATCHER_SPEED_MPS)),
            *(
                (float(route[1]), route)
                for route in (
                    quoted_route(trip, None),
                    quoted_route(trip, city),
                    quoted_route(trip, model),
                )
            ),
        ]
        for row, (seconds, (distance_m, duration_s)) in zip(rows, estimates, strict=True):
            row.durations.append(seconds)
            total = fares.price_trip(
                terms,
                agreement_version=1,
                service_class=fares.STANDARD,
                distance_m=distance_m,
                duration_s=duration_s,
            ).total
            row.quote_totals.append(total)
            cap = fares.over_quote_cap(terms, service_class=fares.STANDARD, quote_total=total)
            row.capped += real > cap
    return rows, real_fares


def _route_at(trip: TaxiTrip, seconds: float) -> tuple[int, int]:
    distance_m, _ = quoted_route(trip, None)
    return distance_m, int(np.ceil(seconds))


@contextmanager
def resolution(res: int) -> Iterator[None]:
    before = traveltime.RESOLUTION
    traveltime.RESOLUTION = res
    try:
        yield
    finally:
        traveltime.RESOLUTION = before


def learned_mdape(data: Split, *, k: float, res: int) -> tuple[float, int]:
    with resolution(res):
        model = train(data.train, k=k)
        estimates = [quoted_route(t, model)[1] for t in data.test]
        return mdape(estimates, [t.duration_s for t in data.test]), int(model.cells.size)


def report(data: Split, timed: Callable[[], float]) -> str:
    model = train(data.train)
    rows, real_fares = evaluate(data.test, model)
    truth = [t.duration_s for t in data.test]
    speeds = sorted(t.distance_m / t.duration_s * 3.6 for t in data.train)
    test_cells = traveltime.cells_of(
        np.array([t.pickup_lat for t in data.test]), np.array([t.pickup_lon for t in data.test])
    )
    known = float(np.isin(test_cells, model.cells).mean() * 100)
    lines = [
        BEGIN,
        "",
        f"Run on {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}: {len(data.train)} training and {len(data.test)} test trips "
        f"({data.dropped} of the file's trips with both ends in the New York area left out: "
        f"under {MIN_DURATION_S:.0f} s or over {MAX_DURATION_S / 3600:.0f} h, under "
        f"{MIN_LINE_M:.0f} m apart, or faster than the agreement's plausible speed). "
        f"Training trips' median speed {np.median(speeds):.1f} km/h; the model learned "
        f"{model.cells.size} cells from {model.passages} passages, city-wide "
        f"{model.city_speed_kmh(hour_of(data.train[-1])):.1f} km/h at the rush hour; "
        f"{known:.0f}% of test pickups fall in a learned cell. "
        f"Resolution {traveltime.RESOLUTION}, k = {traveltime.SHRINK_K:g}.",
        "",
        "| estimator | duration MdAPE | median duration error | quote total MdAPE "
        "| median quote error | real fare above the quote's cap |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        totals = [float(x) for x in row.quote_totals]
        lines.append(
            f"| {row.name} | **{mdape(row.durations, truth):.1f}%** "
            f"| {median_bias(row.durations, truth):+.1f}% "
            f"| **{mdape(totals, real_fares):.1f}%** | {median_bias(totals, real_fares):+.1f}% "
            f"| {row.capped} of {len(data.test)} |"
        )
    lines += [
        "",
        "The quote's distance is the straight line x 1.3 in every row (the taximeter's real "
        "distance is what the reference fare uses), so the quote rows differ only by duration. "
        "The matcher's row is priced at its duration for comparison; it never quoted.",
        "",
        "Sensitivity of the learned model's duration MdAPE (same split) to the shrinkage "
        "strength k and the H3 resolution (cells learned in brackets):",
        "",
        "| k | resolution 7 | resolution 8 | resolution 9 |",
        "|---|---|---|---|",
    ]
    for k in (1.0, 3.0, 10.0, 30.0, 100.0):
        cells = []
        for res in (7, 8, 9):
            error, count = learned_mdape(data, k=k, res=res)
            cells.append(f"{error:.1f}% ({count})")
        lines.append(f"| {k:g} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Lookup speed (the matcher's batch path): {timed():.2f} ms median (load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs) for the pickup ETAs "
        "of 10,000 edges among 1,000 requests and 2,000 drivers (cells of each endpoint once, "
        "the midpoints per edge); the whole costs stage is timed by `make bench` "
        "([performance.md](performance.md)).",
        "",
        END,
    ]
    return "\n".join(lines)


def lookup_ms(model: TravelModel, repeats: int = 15) -> float:
    rng = np.random.default_rng(3)
    lat0, lon0 = 40.75, -73.98
    r_lat, r_lon = lat0 + rng.normal(0, 0.03, 1000), lon0 + rng.normal(0, 0.03, 1000)
    d_lat, d_lon = lat0 + rng.normal(0, 0.03, 2000), lon0 + rng.normal(0, 0.03, 2000)
    requests = np.repeat(np.arange(1000), 10)
    drivers = rng.integers(0, 2000, 10_000)
    distance = traveltime.haversine_array(
        d_lat[drivers], d_lon[drivers], r_lat[requests], r_lon[requests]
    )
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        d_cells = traveltime.cells_of(d_lat, d_lon)
        r_cells = traveltime.cells_of(r_lat, r_lon)
        model.pickup_eta_s_array(
            distance_m=distance,
            from_lat=d_lat[drivers],
            from_lon=d_lon[drivers],
            to_lat=r_lat[requests],
            to_lon=r_lon[requests],
            hour=79,
            from_cell=d_cells[drivers],
            to_cell=r_cells[requests],
        )
        times.append((time.perf_counter() - began) * 1000)
    return float(np.median(times))


def write(doc: Path, section: str) -> None:
    text = doc.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    doc.write_text(text[:start] + section + text[end:], encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench_eta", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    terms = load_founding_terms()
    data = split(yellow_trips(new_york()), float(terms.dispatch.max_plausible_speed_kmh))
    model = train(data.train)
    section = report(data, lambda: lookup_ms(model))
    print(section)
    if not args.no_write:
        write(DOC, section)
        print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
