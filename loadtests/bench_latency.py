"""Dispatch latency benchmark: from a rider's request to the offer frame arriving on the offered
driver's socket, with 10,000 connected drivers reporting positions every 4 s and a steady 10
requests a second.

One service process (matcher included, with the founding agreement's `batch_interval_ms`),
against the private PostgreSQL and Redis of COOP_DATA_DIR (bench database `<db>_bench`);
drivers and riders are written straight into the database with their tokens. Every driver
connects, reports a position inside the service area and goes available; then the generator
keeps every driver reporting every 4 s, while riders request trips (`POST /v1/trips`, pickups
uniform over the area, drop-offs 1-5 km away) at a steady rate. Latency = the offer frame's
arrival at the driver's socket minus the moment the request was sent, both on this machine's
clock. The offer's `expires_at` minus the agreement's `offer_timeout_s` is when its batch
started, which splits each latency into the wait for the next batch and the batch's own time
(candidates, solve, writing the offers, the push through Redis and the socket).

Drivers ignore their offers; each rider cancels as soon as their offer has arrived (so open
requests stay at the rate times the latency, as in a steady city, instead of piling up behind
15 s offer expiries), and requests again later.

Baseline, in the same run: the same requests with 100 connected drivers and no position stream,
and the floor any batched matcher has: a request waits for the next batch, uniformly up to
one interval (p50 = interval / 2, p99 = 0.99 x interval).

    python -m loadtests.bench_latency                        # 10,000 drivers, 60 s, ~4 minutes
    python -m loadtests.bench_latency --drivers 2000 --duration 30 --no-baseline
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from coop.geo import ServiceArea
from coop.settings import get_settings
from loadtests.bench_ingest import Driver, Sender
from loadtests.benchenv import BenchEnv, Member, insert_accounts, positions_in_area
from loadtests.metrics import scrape, service_pauses
from loadtests.procstats import CpuMeter, own_cpu_s, pids, raise_open_files_limit
from loadtests.report import log, machine_line, median, percentile
from loadtests.runtime import GcWatch, LoopLag, freeze_generator, run_bench
from loadtests.wsclient import WsClient, await_all, frame_type, open_sockets, ready_on
from server.simulator.movement import random_destination, random_point_in

OFFER_WAIT_S = 10.0  # a request without an offer by then counts as missed


@dataclass
class Request:
    rider: Member
    sent_at: float
    answered_at: float = 0.0
    trip_id: str | None = None
    status: int = 0
    measured: bool = False


@dataclass
class Offer:
    received_at: float
    batch_at: float
    driver: int


@dataclass
class Result:
    setup: str
    drivers: int
    requests: int = 0
    offered: int = 0
    latencies: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    batch_parts: list[float] = field(default_factory=list)
    http: list[float] = field(default_factory=list)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    cpu: dict[str, float] = field(default_factory=dict)
    generator_gc: str = ""
    generator_lag: str = ""
    service_pauses: str = ""
    interval_ms: int = 0
    position_rate: float = 0.0


class Riders:
    """Requests at a steady rate from a pool of riders; each cancels once offered."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        riders: list[Member],
        offers: dict[str, Offer],
        rate: float,
        seed: int,
    ) -> None:
        self.http = http
        self.free = collections.deque(riders)
        self.offers = offers
        self.rate = rate
        self.rng = random.Random(seed)
        self.area = ServiceArea.from_file(get_settings().service_area)
        self.requests: list[Request] = []
        self.measuring = False
        self.failures: collections.Counter[str] = collections.Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, duration_s: float) -> None:
        started = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - started) < duration_s:
            due = int(self.rate * elapsed) + 1 - sent
            for _ in range(due):
                if not self.free:
                    self.failures["no free rider"] += 1
                    continue
                task = asyncio.create_task(self._ride(self.free.popleft()))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            sent += max(0, due)
            await asyncio.sleep((sent / self.rate) - (time.monotonic() - started))

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _ride(self, rider: Member) -> None:
        pickup = random_point_in(self.rng, self.area)
        dropoff = random_destination(self.rng, self.area, pickup, min_m=1000, max_m=5000)
        headers = {"Authorization": f"Bearer {rider.token}"}
        request = Request(rider, time.time(), measured=self.measuring)
        self.requests.append(request)
        try:
            try:
                ask = {"pickup": pickup.to_wire(), "dropoff": dropoff.to_wire()}
                quoted = await self.http.post("/v1/quotes", json=ask, headers=headers)
                quoted.raise_for_status()
                request.sent_at = time.time()  # the request's latency, not the quote's
                response = await self.http.post(
                    "/v1/trips",
                    json={**ask, "quote_id": quoted.json()["quote_id"]},
                    headers=headers,
                )
            except httpx.HTTPError as exc:
                self.failures[f"request: {type(exc).__name__}"] += 1
                return
            request.answered_at = time.time()
            request.status = response.status_code
            if response.status_code != 201:
                self.failures[f"request: {response.status_code}"] += 1
                return
            trip_id = str(response.json()["id"])
            request.trip_id = trip_id
            deadline = time.monotonic() + OFFER_WAIT_S
            while trip_id not in self.offers and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            try:
                cancelled = await self.http.post(
                    f"/v1/trips/{trip_id}/cancel", json={"reason": "bench"}, headers=headers
                )
                if cancelled.status_code != 200:
                    self.failures[f"cancel: {cancelled.status_code}"] += 1
            except httpx.HTTPError as exc:
                self.failures[f"cancel: {type(exc).__name__}"] += 1
        finally:
            self.free.append(rider)


def offer_recorder(offers: dict[str, Offer], timeout_s: int) -> Any:
    def on_frame(client: WsClient, received_at: float, text: str) -> None:
        if frame_type(text) != "offer":
            return
        frame = json.loads(text)
        expires_at = datetime.fromisoformat(frame["expires_at"]).timestamp()
        offers.setdefault(
            frame["trip_id"], Offer(received_at, expires_at - timeout_s, client.index)
        )

    return on_frame


async def agreement_dispatch(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
        response = await http.get("/v1/agreements/current")
    response.raise_for_status()
    dispatch: dict[str, Any] = response.json()["terms"]["dispatch"]
    return dispatch


async def run_setup(
    env: BenchEnv,
    setup: str,
    drivers: list[Member],
    riders: list[Member],
    args: argparse.Namespace,
    *,
    position_every_s: float | None,
    overrides: dict[str, str],
) -> Result:
    result = Result(setup, len(drivers))
    offers: dict[str, Offer] = {}
    service = env.service(f"latency-{len(drivers)}", **overrides)
    clients: list[WsClient] = []
    service.start()
    try:
        await service.wait_ready_async("/readyz")
        terms = await agreement_dispatch(service.base_url)
        result.interval_ms = int(terms["batch_interval_ms"])
        timeout_s = int(terms["offer_timeout_s"])
        handler = ready_on("hello", ready_on("availability", offer_recorder(offers, timeout_s)))
        clients, errors = await open_sockets(
            service.base_url, "/v1/ws/driver", [d.token for d in drivers], handler
        )
        if errors:
            raise RuntimeError(f"{len(errors)} sockets failed: {errors[:3]}")
        spots = positions_in_area(len(drivers), seed=4)
        states = [Driver(d.id, p.lat, p.lon) for d, p in zip(drivers, spots, strict=True)]

        def go_online(client: WsClient) -> None:
            spot = spots[client.index]
            client.send_text(f'{{"type":"location","lat":{spot.lat:.6f},"lon":{spot.lon:.6f}}}')
            client.send_text('{"type":"availability","available":true}')

        _, missing = await await_all(clients, go_online, timeout_s=60.0, spread_s=5.0)
        if missing:
            raise RuntimeError(f"{missing} drivers did not go online")
        log(f"{setup}: {len(clients)} drivers online")
        freeze_generator()
        sender = Sender(clients, states)
        if position_every_s:
            result.position_rate = len(clients) / position_every_s
            sender.start(result.position_rate)
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(
            base_url=service.base_url, timeout=30.0, limits=limits
        ) as http:
            rides = Riders(http, riders, offers, args.rate, seed=len(drivers))
            lag = LoopLag()
            lag.start()
            with GcWatch() as gc_watch:
                running = asyncio.create_task(rides.run(args.warmup + args.duration))
                await asyncio.sleep(args.warmup)
                gc_watch.reset()
                lag.lags.clear()
                rides.measuring = True
                before = await scrape(service.base_url)
                cpu = CpuMeter({**env.cpu_groups(), "service": pids(service.pid)})
                cpu.start()
                generator_cpu = own_cpu_s()
                await running
                wall, used = cpu.read()
                used["generator"] = own_cpu_s() - generator_cpu
                result.cpu = {name: value / wall for name, value in used.items()}
                result.service_pauses = service_pauses(before, await scrape(service.base_url))
                await rides.drain()
                result.generator_gc = gc_watch.summary()
            await lag.stop()
            result.generator_lag = lag.summary()
            await sender.stop()
        result.failures = rides.failures
        for request in rides.requests:
            if not request.measured:
                continue
            result.requests += 1
            if request.trip_id is None:
                continue
            result.http.append(request.answered_at - request.sent_at)
            offer = offers.get(request.trip_id)
            if offer is None:
                result.failures["no offer within 10 s"] += 1
                continue
            result.offered += 1
            result.latencies.append(offer.received_at - request.sent_at)
            result.waits.append(offer.batch_at - request.sent_at)
            result.batch_parts.append(offer.received_at - offer.batch_at)
        log(
            f"{setup}: {result.offered}/{result.requests} offered, latency p50 "
            f"{ms(median(result.latencies))} ms, p99 {ms(percentile(result.latencies, 99))} ms"
        )
    finally:
        for client in clients:
            client.close()
        await asyncio.sleep(1.0)
        service.stop()
    return result


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def report(results: list[Result], args: argparse.Namespace, elapsed_s: float) -> str:
    command = (
        f"python -m loadtests.bench_latency --drivers {args.drivers} --rate {args.rate:g} "
        f"--duration {args.duration:g}" + "".join(f" --env {item}" for item in args.env)
    )
    lines = [
        f"Run: `{command}` ({elapsed_s:.0f} s); {machine_line()}.",
        "",
        "| setup | requests | offered | **request -> offer p50 / p99 / max (ms)** "
        "| wait for the batch p50 / p99 | batch start -> offer on socket p50 / p99 / max "
        "| POST /v1/trips p50 / p99 | CPU (share of one core) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.setup} | {r.requests} | {r.offered} "
            f"| **{ms(median(r.latencies))} / {ms(percentile(r.latencies, 99))} / "
            f"{ms(max(r.latencies, default=float('nan')))}** "
            f"| {ms(median(r.waits))} / {ms(percentile(r.waits, 99))} "
            f"| {ms(median(r.batch_parts))} / {ms(percentile(r.batch_parts, 99))} / "
            f"{ms(max(r.batch_parts, default=float('nan')))} "
            f"| {ms(median(r.http))} / {ms(percentile(r.http, 99))} "
            f"| {', '.join(f'{k} {v * 100:.0f}%' for k, v in sorted(r.cpu.items()))} |"
        )
    interval = results[0].interval_ms if results else 0
    lines += [
        "",
        f"Floor of a batched matcher at batch_interval_ms = {interval}: p50 {interval / 2:.0f} "
        f"ms, p99 {0.99 * interval:.0f} ms. Target: p99 <= {interval + 150} ms.",
    ]
    for r in results:
        target = r.interval_ms + 150
        p99 = percentile(r.latencies, 99) * 1000
        verdict = "met" if p99 <= target else "missed"
        lines.append(
            f"\n{r.setup}: p99 {p99:.0f} ms vs target {target} ms ({verdict}; "
            f"{p99 / (0.99 * r.interval_ms):.2f}x the floor's p99). Positions "
            f"{r.position_rate:.0f}/s. Failures: {dict(r.failures) or 'none'}. "
            f"Service pauses: {r.service_pauses}. Generator GC: {r.generator_gc}; "
            f"generator loop lag: {r.generator_lag}."
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    limit = raise_open_files_limit()
    if limit < args.drivers + 500:
        log(f"RLIMIT_NOFILE is {limit}; {args.drivers} sockets need more")
        return 2
    started = time.monotonic()
    env = await BenchEnv.create()
    riders_needed = int(args.rate * (OFFER_WAIT_S + 5)) + 50
    drivers, riders = await insert_accounts(env, drivers=args.drivers, riders=riders_needed)
    log(f"{len(drivers)} drivers and {len(riders)} riders written to the bench database")
    overrides = {"COOP_GC_STATS": "true"}
    overrides.update(dict(item.split("=", 1) for item in args.env))
    results = []
    if args.baseline:
        results.append(
            await run_setup(
                env,
                "baseline: 100 drivers, no position stream",
                drivers[:100],
                riders,
                args,
                position_every_s=None,
                overrides=overrides,
            )
        )
        await env.fetch("TRUNCATE location_driver_position, trip CASCADE")
    results.append(
        await run_setup(
            env,
            f"{args.drivers} drivers, positions every {args.position_every:g} s",
            drivers,
            riders,
            args,
            position_every_s=args.position_every,
            overrides=overrides,
        )
    )
    print(report(results, args, time.monotonic() - started))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench_latency", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--drivers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=10.0, help="requests per second")
    parser.add_argument("--position-every", type=float, default=4.0, help="seconds per driver")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    parser.add_argument(
        "--env", action="append", default=[], metavar="COOP_X=VALUE", help="service settings"
    )
    args = parser.parse_args(argv)
    return run_bench(run(args))


if __name__ == "__main__":
    sys.exit(main())
