"""Dispatch on real demand: the New York yellow-taxi morning rush replayed against the service.

The requests are real (`dispatch/matching/data`, provenance in its SOURCES.md): 1,840 trips picked
up on Thursday 10 March 2016 between 07:07 and 07:19, each requested at its real pickup time
(relative to the first), from its real pickup point to its real drop-off. The service runs as `make
serve` runs it (one `python -m server serve`, matcher included, the founding agreement), on the New
York service area, against the private PostgreSQL and Redis of COOP_DATA_DIR (bench database
`<db>_bench`).

Drivers start at real ride-hail pickup places (the Uber April 2014 pickups), connect over the
driver socket, report their position every 4 s and drive: idle ones cruise slowly between nearby
pickup places; one that gets an offer accepts it, drives to the pickup at 25 km/h in straight
lines, says `arrived`, boards for 30 s, `start`s, drives to the drop-off, `complete`s, and is
free again where it stopped. Latency is the offer frame's arrival on the driver's socket minus
the moment the request was sent (both on this machine's clock); the offer's `expires_at` minus
the agreement's `offer_timeout_s` is its batch's start, which splits each latency into the wait
for the batch and the batch's own time. The service's `/metrics` give each stage of a batch.

    python -m loadtests.bench_replay                         # 2,000 drivers, the whole rush, 3 runs
    python -m loadtests.bench_replay --drivers 5000 --runs 1
    python -m loadtests.bench_replay --drivers 500 --minutes 2 --runs 1     # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from coop.geo import haversine_m
from loadtests.benchenv import BenchEnv, Member, insert_accounts
from loadtests.metrics import Samples, histogram_delta, histogram_quantile, scrape
from loadtests.procstats import CpuMeter, own_cpu_s, pids, raise_open_files_limit
from loadtests.realdemand import NEW_YORK_AREA, Pickup, TaxiTrip, new_york, uber_pickups
from loadtests.realdemand import yellow_trips as read_yellow_trips
from loadtests.report import log, machine_line, median, percentile
from loadtests.runtime import freeze_generator, run_bench
from loadtests.wsclient import WsClient, await_all, frame_type, open_sockets, ready_on

RUSH_START = datetime(2016, 3, 10, 7, 0)
DRIVE_KMH = 25.0
CRUISE_KMH = 12.0
BOARDING_S = 30.0
POSITION_EVERY_S = 4.0
# After the last request: how long unanswered requests may still get their offer.
DRAIN_S = 20.0
# A step (arrived, complete) follows the position that justifies it after at least one flush.
STEP_AFTER_POSITION_S = 0.6
STAGES = ("sweep", "search", "costs", "solve", "offers", "push")


@dataclass
class Request:
    trip: TaxiTrip
    due_s: float
    sent_at: float = 0.0
    status: int = 0
    trip_id: str | None = None


@dataclass
class OfferSeen:
    received_at: float
    batch_at: float
    driver: int
    pickup_eta_s: int


@dataclass
class Car:
    """A driver of the generator: where it is, where it goes, and what it is doing."""

    index: int
    member: Member
    lat: float
    lon: float
    to_lat: float = 0.0
    to_lon: float = 0.0
    from_lat: float = 0.0
    from_lon: float = 0.0
    leg_started: float = 0.0
    leg_s: float = 0.0
    phase: str = "idle"  # idle | to_pickup | boarding | on_trip | stepping
    trip_id: str | None = None
    trip: dict[str, Any] | None = None
    busy_until: float = 0.0

    def drive_to(self, lat: float, lon: float, kmh: float, now: float) -> float:
        self.from_lat, self.from_lon = self.lat, self.lon
        self.to_lat, self.to_lon = lat, lon
        distance = haversine_m(self.lat, self.lon, lat, lon)
        self.leg_started = now
        self.leg_s = distance / (kmh / 3.6)
        return distance

    def advance(self, now: float) -> bool:
        """Moves along the leg; answers whether the leg is done."""
        if self.leg_s <= 0:
            return True
        share = min(1.0, (now - self.leg_started) / self.leg_s)
        self.lat = self.from_lat + (self.to_lat - self.from_lat) * share
        self.lon = self.from_lon + (self.to_lon - self.from_lon) * share
        return share >= 1.0


@dataclass
class Run:
    number: int
    drivers: int
    requests: list[Request] = field(default_factory=list)
    offers: dict[str, OfferSeen] = field(default_factory=dict)
    accepted: int = 0
    completed: int = 0
    pickup_m: float = 0.0
    pickup_eta_s: int = 0
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    stages: dict[str, tuple[float, float, float, int]] = field(default_factory=dict)
    lateness: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    batch_total: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    batches: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    interval_ms: int = 0
    min_interval_ms: int | None = None

    def latencies(self) -> list[float]:
        return [
            self.offers[r.trip_id].received_at - r.sent_at
            for r in self.requests
            if r.trip_id is not None and r.trip_id in self.offers
        ]

    def waits(self) -> list[float]:
        return [
            self.offers[r.trip_id].batch_at - r.sent_at
            for r in self.requests
            if r.trip_id is not None and r.trip_id in self.offers
        ]


class City:
    """The generator's side of one run: cars, requests and the calls they make."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        cars: list[Car],
        places: list[Pickup],
        run: Run,
        timeout_s: int,
        speedup: float,
        seed: int,
    ) -> None:
        self.http = http
        self.cars = cars
        self.places = places
        self.run = run
        self.timeout_s = timeout_s
        self.speedup = speedup
        self.rng = random.Random(seed)
        self.clients: list[WsClient] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False

    def spawn(self, coroutine: Any) -> None:
        if self.closing:
            coroutine.close()  # the run is over: nothing new starts
            return
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- frames from the service -------------------------------------------------------------

    def on_frame(self, client: WsClient, received_at: float, text: str) -> None:
        kind = frame_type(text)
        if kind == "offer":
            frame = json.loads(text)
            expires_at = datetime.fromisoformat(frame["expires_at"]).timestamp()
            self.run.offers.setdefault(
                frame["trip_id"],
                OfferSeen(
                    received_at, expires_at - self.timeout_s, client.index, frame["pickup_eta_s"]
                ),
            )
            car = self.cars[client.index]
            if car.phase == "idle":
                car.phase = "stepping"
                self.spawn(self.accept(car, frame))
            else:
                self.spawn(self.call(car, f"/v1/offers/{frame['offer_id']}/decline"))
        elif kind == "trip":
            trip = json.loads(text)["trip"]
            car = self.cars[client.index]
            if car.trip_id == trip["id"] and trip["status"] in {"cancelled", "unfulfilled"}:
                car.phase, car.trip_id, car.trip = "idle", None, None

    async def call(self, car: Car, path: str) -> httpx.Response | None:
        try:
            response = await self.http.post(
                path, headers={"Authorization": f"Bearer {car.member.token}"}
            )
        except httpx.HTTPError as exc:
            self.run.failures[f"{path.rsplit('/', 1)[1]}: {type(exc).__name__}"] += 1
            return None
        if response.status_code >= 500:
            self.run.failures[f"{path.rsplit('/', 1)[1]}: {response.status_code}"] += 1
        return response

    async def accept(self, car: Car, frame: dict[str, Any]) -> None:
        response = await self.call(car, f"/v1/offers/{frame['offer_id']}/accept")
        if response is None or response.status_code != 200:
            car.phase = "idle"
            return
        trip = response.json()
        self.run.accepted += 1
        self.run.pickup_eta_s += int(frame["pickup_eta_s"])
        car.trip_id, car.trip = str(trip["id"]), trip
        now = time.monotonic()
        pickup = trip["pickup"]
        self.run.pickup_m += car.drive_to(
            pickup["lat"], pickup["lon"], DRIVE_KMH * self.speedup, now
        )
        car.phase = "to_pickup"

    async def step(self, car: Car, step: str) -> bool:
        await asyncio.sleep(STEP_AFTER_POSITION_S)
        response = await self.call(car, f"/v1/trips/{car.trip_id}/{step}")
        return response is not None and response.status_code == 200

    async def arrive_and_start(self, car: Car) -> None:
        if not await self.step(car, "arrived"):
            self.run.failures["arrived refused"] += 1
            car.phase, car.trip_id, car.trip = "idle", None, None
            return
        await asyncio.sleep(BOARDING_S / self.speedup)
        if not await self.step(car, "start"):
            self.run.failures["start refused"] += 1
            car.phase, car.trip_id, car.trip = "idle", None, None
            return
        assert car.trip is not None
        dropoff = car.trip["dropoff"]
        car.drive_to(dropoff["lat"], dropoff["lon"], DRIVE_KMH * self.speedup, time.monotonic())
        car.phase = "on_trip"

    async def finish(self, car: Car) -> None:
        if await self.step(car, "complete"):
            self.run.completed += 1
        else:
            self.run.failures["complete refused"] += 1
        car.phase, car.trip_id, car.trip = "idle", None, None

    # --- what each car does when its position is sent ------------------------------------------

    def move(self, car: Car, now: float) -> None:
        done = car.advance(now)
        if not done:
            return
        if car.phase == "idle":
            # Cruise towards the nearest of a few real pickup places: local wandering.
            options = self.rng.sample(self.places, 6)
            place = min(options, key=lambda p: haversine_m(car.lat, car.lon, p.lat, p.lon))
            car.drive_to(place.lat, place.lon, CRUISE_KMH * self.speedup, now)
        elif car.phase == "to_pickup":
            car.phase = "stepping"
            self.spawn(self.arrive_and_start(car))
        elif car.phase == "on_trip":
            car.phase = "stepping"
            self.spawn(self.finish(car))

    async def positions(self, stop: asyncio.Event) -> None:
        """Every car reports every POSITION_EVERY_S, round-robin, at a steady rate."""
        rate = len(self.clients) / POSITION_EVERY_S
        started = time.monotonic()
        sent = 0
        while not stop.is_set():
            now = time.monotonic()
            due = int((now - started) * rate) - sent
            for _ in range(max(0, due)):
                client = self.clients[sent % len(self.clients)]
                car = self.cars[client.index]
                self.move(car, now)
                client.send_text(f'{{"type":"location","lat":{car.lat:.6f},"lon":{car.lon:.6f}}}')
                sent += 1
            await asyncio.sleep(0.005)

    # --- riders ------------------------------------------------------------------------------

    async def request(self, request: Request, rider: Member) -> None:
        trip = request.trip
        body = {
            "pickup": {"lat": trip.pickup_lat, "lon": trip.pickup_lon},
            "dropoff": {"lat": trip.dropoff_lat, "lon": trip.dropoff_lon},
        }
        headers = {"Authorization": f"Bearer {rider.token}"}
        try:
            quoted = await self.http.post("/v1/quotes", json=body, headers=headers)
            quoted.raise_for_status()
            request.sent_at = time.time()  # the request's latency, not the quote's
            response = await self.http.post(
                "/v1/trips", json={**body, "quote_id": quoted.json()["quote_id"]}, headers=headers
            )
        except httpx.HTTPError as exc:
            self.run.failures[f"request: {type(exc).__name__}"] += 1
            return
        request.status = response.status_code
        if response.status_code == 201:
            request.trip_id = str(response.json()["id"])
        else:
            self.run.failures[f"request: {response.status_code}"] += 1

    async def riders(self, riders: list[Member]) -> None:
        started = time.monotonic()
        for request, rider in zip(self.run.requests, riders, strict=False):
            delay = request.due_s - (time.monotonic() - started)
            if delay > 0:
                await asyncio.sleep(delay)
            self.spawn(self.request(request, rider))


def rush(area_trips: list[TaxiTrip], minutes: float | None, speedup: float) -> list[Request]:
    trips = [t for t in area_trips if t.pickup_at >= RUSH_START]
    first = trips[0].pickup_at
    if minutes is not None:
        trips = [t for t in trips if t.pickup_at - first < timedelta(minutes=minutes)]
    return [Request(t, (t.pickup_at - first).total_seconds() / speedup) for t in trips]


def stage_figures(before: Samples, after: Samples, run: Run) -> None:
    for stage in STAGES:
        count, _, buckets = histogram_delta(
            before, after, "coop_matcher_stage_seconds", {"stage": stage}
        )
        run.stages[stage] = (
            histogram_quantile(buckets, 0.5),
            histogram_quantile(buckets, 0.9),
            histogram_quantile(buckets, 0.99),
            count,
        )
    for name, attribute in (
        ("coop_matcher_batch_seconds", "batch_total"),
        ("coop_matcher_batch_lateness_seconds", "lateness"),
    ):
        count, _, buckets = histogram_delta(before, after, name)
        setattr(
            run,
            attribute,
            tuple(histogram_quantile(buckets, q) for q in (0.5, 0.9, 0.99)),
        )
        if attribute == "batch_total":
            run.batches = count


async def replay(
    env: BenchEnv,
    number: int,
    drivers: list[Member],
    riders: list[Member],
    requests: list[Request],
    places: list[Pickup],
    args: argparse.Namespace,
) -> Run:
    run = Run(number, len(drivers), requests=[Request(r.trip, r.due_s) for r in requests])
    overrides = {"COOP_SERVICE_AREA": str(NEW_YORK_AREA), **dict(e.split("=", 1) for e in args.env)}
    service = env.service(f"replay-{number}", **overrides)
    service.start()
    clients: list[WsClient] = []
    try:
        await service.wait_ready_async("/readyz")
        async with httpx.AsyncClient(base_url=service.base_url, timeout=30.0) as http:
            terms = (await http.get("/v1/agreements/current")).json()["terms"]["dispatch"]
        run.interval_ms = int(terms["batch_interval_ms"])
        run.min_interval_ms = terms.get("min_batch_interval_ms")
        rng = random.Random(number)
        starts = rng.sample(places, len(drivers))
        cars = [
            Car(i, d, p.lat, p.lon) for i, (d, p) in enumerate(zip(drivers, starts, strict=True))
        ]
        # As many calls in flight as a worker's database pool holds (pool size plus overflow).
        limits = httpx.Limits(max_connections=30, max_keepalive_connections=30)
        async with httpx.AsyncClient(
            base_url=service.base_url, timeout=30.0, limits=limits
        ) as http:
            city = City(
                http=http,
                cars=cars,
                places=places,
                run=run,
                timeout_s=int(terms["offer_timeout_s"]),
                speedup=args.speedup,
                seed=number,
            )
            handler = ready_on("hello", ready_on("availability", city.on_frame))
            clients, errors = await open_sockets(
                service.base_url, "/v1/ws/driver", [d.token for d in drivers], handler
            )
            if errors:
                raise RuntimeError(f"{len(errors)} sockets failed: {errors[:3]}")
            city.clients = clients

            def go_online(client: WsClient) -> None:
                car = cars[client.index]
                client.send_text(f'{{"type":"location","lat":{car.lat:.6f},"lon":{car.lon:.6f}}}')
                client.send_text('{"type":"availability","available":true}')

            _, missing = await await_all(clients, go_online, timeout_s=60.0, spread_s=5.0)
            if missing:
                raise RuntimeError(f"{missing} drivers did not go online")
            freeze_generator()
            stop = asyncio.Event()
            moving = asyncio.create_task(city.positions(stop))
            await asyncio.sleep(POSITION_EVERY_S)  # every car has reported from its spot
            log(f"run {number}: {len(clients)} drivers online; replaying {len(requests)} requests")
            before = await scrape(service.base_url)
            cpu = CpuMeter({**env.cpu_groups(), "service": pids(service.pid)})
            cpu.start()
            generator_cpu = own_cpu_s()
            await city.riders(riders)
            deadline = time.monotonic() + DRAIN_S
            while time.monotonic() < deadline and any(
                r.trip_id is not None and r.trip_id not in run.offers for r in run.requests
            ):
                await asyncio.sleep(0.25)
            wall, used = cpu.read()
            used["generator"] = own_cpu_s() - generator_cpu
            run.cpu = {name: spent / wall for name, spent in used.items()}
            city.closing = True
            stop.set()
            await moving
            for task in list(city.tasks):
                task.cancel()
            await asyncio.gather(*city.tasks, return_exceptions=True)
            try:
                stage_figures(before, await scrape(service.base_url), run)
            except httpx.HTTPError as exc:
                run.failures[f"metrics: {type(exc).__name__}"] += 1
        lat = run.latencies()
        log(
            f"run {number}: {len(lat)}/{len(run.requests)} offered, p50 {ms(median(lat))} ms, "
            f"p99 {ms(percentile(lat, 99))} ms"
        )
    finally:
        for client in clients:
            client.close()
        await asyncio.sleep(1.0)
        service.stop()
    return run


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f}"


def report(runs: list[Run], args: argparse.Namespace, elapsed_s: float) -> str:
    command = f"python -m loadtests.bench_replay --drivers {args.drivers} --runs {args.runs}"
    if args.minutes is not None:
        command += f" --minutes {args.minutes:g}"
    if args.speedup != 1:
        command += f" --speedup {args.speedup:g}"
    command += "".join(f" --env {item}" for item in args.env)
    lines = [
        f"Run: `{command}` ({elapsed_s:.0f} s); {machine_line()}.",
        "",
        "| run | requests | offered | **request -> offer p50 / p90 / p99 (ms)** "
        "| wait for the batch p50 / p99 | batch start -> offer p50 / p99 "
        "| batches | 5xx | pickup: km driven, sum of offered ETAs | CPU (share of one core) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lat, waits = run.latencies(), run.waits()
        parts = [a - b for a, b in zip(lat, waits, strict=True)]
        fivexx = sum(v for k, v in run.failures.items() if ": 5" in k)
        lines.append(
            f"| {run.number} | {len(run.requests)} | {len(lat)} "
            f"| **{ms(median(lat))} / {ms(percentile(lat, 90))} / {ms(percentile(lat, 99))}** "
            f"| {ms(median(waits))} / {ms(percentile(waits, 99))} "
            f"| {ms(median(parts))} / {ms(percentile(parts, 99))} "
            f"| {run.batches} | {fivexx} "
            f"| {run.pickup_m / 1000:.0f} km, {run.pickup_eta_s / 3600:.1f} h "
            f"| {', '.join(f'{k} {v * 100:.0f}%' for k, v in sorted(run.cpu.items()))} |"
        )
    lines += [
        "",
        "Each stage of a batch, from the service's `/metrics` (histogram buckets: a figure is the "
        "bucket's upper bound), p50 / p90 / p99 in ms:",
        "",
        "| run | " + " | ".join(STAGES) + " | whole batch | start late by |",
        "|---|" + "---|" * (len(STAGES) + 2),
    ]
    for run in runs:
        cells = [
            f"{ms(s[0])} / {ms(s[1])} / {ms(s[2])}"
            for s in (run.stages.get(stage, (math.nan,) * 4) for stage in STAGES)
        ]
        total = " / ".join(ms(x) for x in run.batch_total)
        late = " / ".join(ms(x) for x in run.lateness)
        lines.append(f"| {run.number} | " + " | ".join(cells) + f" | {total} | {late} |")
    if runs:
        interval = runs[0].interval_ms
        lines += [
            "",
            f"batch_interval_ms {interval}"
            + (
                f", min_batch_interval_ms {runs[0].min_interval_ms}"
                if runs[0].min_interval_ms is not None
                else ""
            )
            + f"; target p99 <= {interval + 150} ms. "
            + "; ".join(
                f"run {r.number}: {r.accepted} accepted, {r.completed} completed, "
                f"failures {dict(r.failures) or 'none'}"
                for r in runs
            ),
        ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    limit = raise_open_files_limit()
    if limit < args.drivers + 500:
        log(f"RLIMIT_NOFILE is {limit}; {args.drivers} sockets need more")
        return 2
    started = time.monotonic()
    area = new_york()
    requests = rush(read_yellow_trips(area), args.minutes, args.speedup)
    places = uber_pickups(area)
    env = await BenchEnv.create()
    drivers, riders = await insert_accounts(
        env, drivers=args.drivers, riders=len(requests) * args.runs
    )
    log(f"{len(drivers)} drivers and {len(riders)} riders written; {len(requests)} requests")
    runs = []
    for number in range(1, args.runs + 1):
        batch = riders[(number - 1) * len(requests) : number * len(requests)]
        runs.append(await replay(env, number, drivers, batch, requests, places, args))
        await env.fetch("TRUNCATE location_driver_position, trip CASCADE")
    print(report(runs, args, time.monotonic() - started))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench_replay", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--drivers", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=None, help="only the rush's first N")
    parser.add_argument("--speedup", type=float, default=1.0, help="replay N times faster")
    parser.add_argument(
        "--env", action="append", default=[], metavar="COOP_X=VALUE", help="service settings"
    )
    args = parser.parse_args(argv)
    return run_bench(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
