"""Ingest benchmark: driver positions per second, end to end, through one service process (and
through two sharing one Redis and one PostgreSQL: the scale-out ratio).

End to end means from the frame leaving the driver's socket to the position being visible to the
matcher: the row of `location_driver_position` (the table its KNN search reads) holding it. Each
driver's frames carry a sequence number in `heading` (seq / 100 degrees), so reading the table
tells exactly which report of every driver is visible. A rate step sends `location` frames at a
steady offered rate, round-robin over the sockets (each driver reports every N / rate seconds,
slower than the flush interval, so no report is overwritten in the buffer before its flush);
after a warm-up it reads every driver's visible sequence number at the start and the end of a
fixed window: visible updates per second = sum of the advances / window. A sample of drivers is
polled every 100 ms for the delay from sending a frame to seeing it in the table.

Baseline, in the same run: the bare uvicorn WebSocket app of `loadtests.baseline` counting the
same frames (the transport's ceiling on this machine with this generator).

    python -m loadtests.bench_ingest                          # 10,000 drivers, 1 and 2 workers
    python -m loadtests.bench_ingest --drivers 2000 --rates 4000 --workers 1 --no-baseline
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import math
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from devtools.processes import ServiceProcess
from loadtests.benchenv import BenchEnv, Member, insert_accounts, positions_in_area
from loadtests.metrics import Samples, scrape, service_pauses, value
from loadtests.procstats import CpuMeter, own_cpu_s, pids, raise_open_files_limit
from loadtests.report import log, machine_line, median, percentile
from loadtests.runtime import GcWatch, LoopLag, freeze_generator, run_bench
from loadtests.wsclient import FrameHandler, WsClient, open_sockets, ready_on
from server.simulator.agents import ReportPace

SEQ_WRAP = 36_000  # heading = (seq % SEQ_WRAP) / 100 stays within 0..360
SAMPLE_EVERY = 20  # one driver in 20 is polled for the end-to-end delay
POLL_S = 0.1
TICK_S = 0.005
MAX_FRESH_P99_S = 2.0


@dataclass
class Driver:
    """What the generator keeps per socket: position, next sequence number, send times of the
    sampled ones."""

    id: uuid.UUID
    lat: float
    lon: float
    seq: int = 0
    sent_at: dict[int, float] | None = None
    # The gap the server asked for in `overloaded` frames, kept as the simulator's drivers keep
    # it; and when a report was last sent (monotonic).
    pace: ReportPace = field(default_factory=ReportPace)
    last_sent: float = 0.0
    deferred: bool = False  # withheld, and due to send its newest position once the gap passed


def heed_overloaded(drivers: Sequence[Driver]) -> FrameHandler:
    """A frame handler that makes each socket's sender keep to the report gap the server asks
    for in `overloaded` error frames, as a client following docs/protocol.md does."""

    def handle(client: WsClient, received_at: float, text: str) -> None:
        if '"overloaded"' in text:
            drivers[client.index].pace.asked(json.loads(text))

    return handle


@dataclass
class Step:
    setup: str
    offered_per_s: float
    sent_per_s: float = 0.0
    taken_per_s: float = 0.0  # reports the service(s) took in (their /metrics counter)
    visible_per_s: float = 0.0
    window_s: float = 0.0
    delays: list[float] = field(default_factory=list)
    behind_at_end: int = 0  # frames sent in the window but not yet visible at its end
    cpu: dict[str, float] = field(default_factory=dict)
    generator_gc: str = ""
    generator_lag: str = ""
    service_pauses: str = ""


def location_frame(driver: Driver, ts: str) -> str:
    """The driver's next report, stamped `ts` (RFC 3339), as an app stamps its fixes."""
    driver.seq += 1
    wobble = (driver.seq % 20) * 1e-5
    heading = (driver.seq % SEQ_WRAP) / 100
    return (
        f'{{"type":"location","lat":{driver.lat + wobble:.6f},"lon":{driver.lon:.6f},'
        f'"ts":"{ts}","heading":{heading:.2f},"speed_mps":8.0}}'
    )


def stamp(epoch_s: float) -> str:
    """An RFC 3339 UTC time to the millisecond."""
    whole = time.gmtime(epoch_s)
    return time.strftime("%Y-%m-%dT%H:%M:%S", whole) + f".{int(epoch_s % 1 * 1000):03d}Z"


class Sender:
    """Sends location frames at `rate` per second in total, round-robin over the sockets,
    from one task (the tick catches up on what is due, so the rate holds despite jitter)."""

    def __init__(self, clients: Sequence[WsClient], drivers: Sequence[Driver]) -> None:
        self.clients = clients
        self.drivers = drivers
        self.sent = 0
        self.withheld = 0  # turns a client let pass because the server asked it to
        self._next = 0
        self._task: asyncio.Task[None] | None = None

    def start(self, rate: float) -> None:
        self._task = asyncio.create_task(self._run(rate))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, rate: float) -> None:
        started, done = time.monotonic(), 0
        count = len(self.clients)
        # Drivers withheld by the server's ask, by when its gap has passed: each then sends its
        # newest position at once, as docs/protocol.md asks of an app (not at its next turn,
        # which would stretch the gap to a whole number of turns).
        deferred: list[tuple[float, int]] = []
        for driver in self.drivers:  # a sender stopped before left them deferred
            driver.deferred = False
        while True:
            due = int(rate * (time.monotonic() - started)) - done
            # Never more than 0.1 s of frames in one go: a stalled generator stays visible as a
            # lower sent rate instead of a burst.
            due = min(due, max(1, int(rate * 0.1)))
            now, clock = time.time(), time.monotonic()
            ts = stamp(now)  # one stamp per tick: the frames of a tick leave together
            while deferred and deferred[0][0] <= clock:
                _, index = heapq.heappop(deferred)
                self.drivers[index].deferred = False
                self._send(index, ts, now, clock)
            for _ in range(max(0, due)):
                index = self._next
                self._next = (index + 1) % count
                driver = self.drivers[index]
                gap = driver.pace.gap_s(0.0)
                if clock - driver.last_sent < gap:
                    self.withheld += 1  # asked to wait: it sends its newest when the gap passed
                    if not driver.deferred:
                        driver.deferred = True
                        heapq.heappush(deferred, (driver.last_sent + gap, index))
                    continue
                self._send(index, ts, now, clock)
            done += max(0, due)
            await asyncio.sleep(TICK_S)

    def _send(self, index: int, ts: str, now: float, clock: float) -> None:
        client, driver = self.clients[index], self.drivers[index]
        if client.open:
            client.send_text(location_frame(driver, ts))
            driver.last_sent = clock
            if driver.sent_at is not None:
                driver.sent_at[driver.seq % SEQ_WRAP] = now
            self.sent += 1


async def visible(env: BenchEnv, ids: list[uuid.UUID] | None = None) -> dict[uuid.UUID, int]:
    """Every (or the given) driver's visible sequence number."""
    if ids is None:
        rows = await env.fetch(
            "SELECT driver_id, heading_deg FROM location_driver_position "
            "WHERE heading_deg IS NOT NULL"
        )
    else:
        rows = await env.fetch(
            "SELECT driver_id, heading_deg FROM location_driver_position "
            "WHERE heading_deg IS NOT NULL AND driver_id = ANY($1::uuid[])",
            ids,
        )
    return {row[0]: round(row[1] * 100) for row in rows}


def advance(before: int, after: int) -> int:
    return (after - before) % SEQ_WRAP


class DelayProbe:
    """Polls the sampled drivers' rows; records send -> visible delays of the reports seen."""

    def __init__(self, env: BenchEnv, drivers: Sequence[Driver]) -> None:
        import asyncpg  # noqa: F401  (imported for its side effect of failing early)

        self.env = env
        self.sampled = {d.id: d for d in drivers if d.sent_at is not None}
        self.delays: list[float] = []
        self.timed: list[tuple[float, float]] = []  # (seen at, delay), for the overload run
        self._seen: dict[uuid.UUID, int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        import asyncpg
        from sqlalchemy.engine import make_url

        from loadtests.benchenv import asyncpg_kwargs

        ids = list(self.sampled)
        connection = await asyncpg.connect(**asyncpg_kwargs(make_url(self.env.database_url)))
        try:
            while True:
                rows = await connection.fetch(
                    "SELECT driver_id, heading_deg FROM location_driver_position "
                    "WHERE heading_deg IS NOT NULL AND driver_id = ANY($1::uuid[])",
                    ids,
                )
                seen_at = time.time()
                for driver_id, heading in rows:
                    seq = round(heading * 100)
                    if self._seen.get(driver_id) == seq:
                        continue
                    self._seen[driver_id] = seq
                    sent = self.sampled[driver_id].sent_at
                    assert sent is not None
                    if seq in sent:
                        delay = seen_at - sent.pop(seq)
                        self.delays.append(delay)
                        self.timed.append((seen_at, delay))
                await asyncio.sleep(POLL_S)
        finally:
            await connection.close()


async def run_setup(
    env: BenchEnv,
    setup: str,
    servers: list[ServiceProcess],
    members: list[Member],
    rates: list[float],
    args: argparse.Namespace,
    *,
    bare: bool = False,
) -> list[Step]:
    steps: list[Step] = []
    spots = positions_in_area(len(members), seed=6)
    drivers = [
        Driver(
            m.id,
            p.lat,
            p.lon,
            sent_at={} if (i % SAMPLE_EVERY == 0 and not bare) else None,
        )
        for i, (m, p) in enumerate(zip(members, spots, strict=True))
    ]
    clients: list[WsClient] = []
    for server in servers:
        server.start()
    try:
        for server in servers:
            await server.wait_ready_async("/readyz")
        handler = ready_on("hello")
        for w, server in enumerate(servers):
            part = list(range(w, len(members), len(servers)))
            opened, errors = await open_sockets(
                server.base_url,
                "/v1/ws/driver",
                [None if bare else members[i].token for i in part],
                handler,
            )
            if errors:
                raise RuntimeError(f"{len(errors)} sockets failed: {errors[:3]}")
            for client in opened:
                client.index = part[client.index]
            clients.extend(opened)
        clients.sort(key=lambda c: c.index)
        log(f"{setup}: {len(clients)} sockets open")
        freeze_generator()
        groups = env.cpu_groups()
        for n, server in enumerate(servers):
            groups[f"service {n + 1}"] = pids(server.pid)
        for rate in rates:
            step = Step(setup, rate)
            sender = Sender(clients, drivers)
            probe = DelayProbe(env, drivers)
            lag = LoopLag()
            with GcWatch() as gc_watch:
                sender.start(rate)
                probe.start()
                lag.start()
                await asyncio.sleep(args.warmup)
                gc_watch.reset()
                lag.lags.clear()
                probe.delays.clear()
                stats_before = await scrape(servers[0].base_url) if args.gc_stats else {}
                cpu = CpuMeter(groups)
                cpu.start()
                generator_cpu = own_cpu_s()
                t0, sent0 = time.monotonic(), sender.sent
                taken0 = 0.0 if bare else await reports_taken(servers)
                first = await frames_counted(servers) if bare else await visible(env)
                await asyncio.sleep(args.window)
                t1, sent1 = time.monotonic(), sender.sent
                taken1 = 0.0 if bare else await reports_taken(servers)
                last = await frames_counted(servers) if bare else await visible(env)
                wall, used = cpu.read()
                used["generator"] = own_cpu_s() - generator_cpu
                step.cpu = {name: value / wall for name, value in used.items()}
                step.window_s = t1 - t0
                step.sent_per_s = (sent1 - sent0) / step.window_s
                if bare:
                    step.visible_per_s = (sum(last.values()) - sum(first.values())) / step.window_s
                    step.taken_per_s = step.visible_per_s
                else:
                    moved = sum(advance(first.get(d, 0), seq) for d, seq in last.items())
                    step.visible_per_s = moved / step.window_s
                    step.taken_per_s = (taken1 - taken0) / step.window_s
                    step.behind_at_end = sum(
                        advance(last.get(d.id, 0), d.seq % SEQ_WRAP) for d in drivers
                    )
                    step.delays = list(probe.delays)
                if args.gc_stats and not bare:
                    step.service_pauses = service_pauses(
                        stats_before, await scrape(servers[0].base_url)
                    )
                step.generator_gc = gc_watch.summary()
                step.generator_lag = lag.summary()
                await sender.stop()
                await probe.stop()
                await lag.stop()
            steps.append(step)
            log(
                f"{setup} at {rate:.0f}/s: sent {step.sent_per_s:.0f}/s, visible "
                f"{step.visible_per_s:.0f}/s, delay p50 {ms(median(step.delays))} ms, "
                f"CPU {cpu_line(step.cpu)}"
            )
            await asyncio.sleep(args.pause)
    finally:
        for client in clients:
            client.close()
        await asyncio.sleep(1.0)
        for server in servers:
            server.stop()
    return steps


async def reports_taken(servers: list[ServiceProcess]) -> float:
    """Location reports the services took in so far (`coop_location_reports_total`)."""
    total = 0.0
    for server in servers:
        total += value(await scrape(server.base_url), "coop_location_reports_total")
    return total


async def frames_counted(servers: list[ServiceProcess]) -> dict[uuid.UUID, int]:
    counts = {}
    async with httpx.AsyncClient(timeout=10.0) as http:
        for server in servers:
            response = await http.get(f"{server.base_url}/count")
            counts[uuid.uuid4()] = int(response.json()["frames"])
    return counts


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def cpu_line(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {share * 100:.0f}%" for name, share in sorted(cpu.items()))


def sustained(step: Step) -> bool:
    """The service kept up: nearly everything sent became visible, and fresh enough for the
    matcher (p99 from sending to visible within 2 s, one batch interval of the founding
    agreement). The bare baseline has no table: it keeps up when it counts what was sent."""
    if not step.delays:
        return step.visible_per_s >= 0.97 * step.sent_per_s
    return (
        step.visible_per_s >= 0.97 * step.sent_per_s
        and percentile(step.delays, 99) <= MAX_FRESH_P99_S
    )


def report(steps: list[Step], args: argparse.Namespace, elapsed_s: float) -> str:
    command = (
        f"python -m loadtests.bench_ingest --drivers {args.drivers} "
        f"--rates {','.join(f'{r:g}' for r in args.rates)} --workers "
        f"{','.join(str(w) for w in args.workers)} --window {args.window:g}"
    )
    lines = [
        f"Run: `{command}` ({elapsed_s:.0f} s); {machine_line()}.",
        "",
        "| setup | offered /s | sent /s | taken in /s | **visible /s** | visible / sent "
        "| send -> visible p50 / p99 (ms) | behind at end | CPU (share of one core) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        delays = f"{ms(median(s.delays))} / {ms(percentile(s.delays, 99))}" if s.delays else "-"
        lines.append(
            f"| {s.setup} | {s.offered_per_s:.0f} | {s.sent_per_s:.0f} | {s.taken_per_s:.0f} "
            f"| **{s.visible_per_s:.0f}** | {s.visible_per_s / max(1.0, s.sent_per_s):.2f} "
            f"| {delays} | {s.behind_at_end} | {cpu_line(s.cpu)} |"
        )
    best: dict[str, float] = {}
    saturated: dict[str, bool] = {}
    for s in steps:
        if sustained(s):
            best[s.setup] = max(best.get(s.setup, 0.0), s.visible_per_s)
        else:
            saturated[s.setup] = True
    lines.append("")
    lines.append(
        "Sustained (visible >= 97% of sent, p99 send -> visible <= 2 s): "
        + "; ".join(
            f"{name} {value:.0f}/s" + ("" if saturated.get(name) else " (not saturated)")
            for name, value in best.items()
        )
        + "."
    )
    one, two = best.get("1 worker"), best.get("2 workers")
    if one and two:
        bound = "" if saturated.get("2 workers") else ">= "
        lines.append(f"Scale-out: 2 workers / 1 worker = **{bound}{two / one:.2f}x**.")
    bare = best.get("bare uvicorn (baseline)")
    if one and bare:
        lines.append(f"1 worker / bare transport = {one / bare:.2f}x.")
    for s in steps:
        if s.setup == "bare uvicorn (baseline)":
            continue
        per_update = {
            name: share / max(1.0, s.visible_per_s) * 1e6 for name, share in s.cpu.items()
        }
        cost = (
            "CPU per visible update "
            + ", ".join(f"{n} {v:.0f} µs" for n, v in sorted(per_update.items()))
            if s.visible_per_s >= 0.5 * s.sent_per_s
            else "too few updates became visible for a CPU cost per update"
        )
        lines.append(
            f"\n{s.setup} at {s.offered_per_s:.0f}/s: {cost}"
            + f". Generator GC: {s.generator_gc}; generator loop lag: {s.generator_lag}."
            + (f" Service 1 pauses: {s.service_pauses}." if s.service_pauses else "")
        )
    return "\n".join(lines)


@dataclass
class Overload:
    """One worker offered its sustained rate, then twice it for `overload_s`, then the sustained
    rate again."""

    setup: str
    rate: float
    sustained_visible: float = 0.0
    sustained_p50: float = 0.0
    sustained_p99: float = 0.0
    overload_sent: float = 0.0
    overload_visible: float = 0.0
    overload_p50: float = 0.0
    overload_p99: float = 0.0
    flushes_per_s: float = 0.0
    shed_per_s: float = 0.0
    rss_mib: list[float] = field(default_factory=list)  # before, peak during, after
    recovered_after_s: float | None = None
    after_p99: float = 0.0


async def _window(
    env: BenchEnv,
    server: ServiceProcess,
    sender: Sender,
    probe: DelayProbe,
    seconds: float,
    rss: list[float],
) -> tuple[float, float, list[float], dict[str, float]]:
    """Visible per second, sent per second, delays, and /metrics deltas over `seconds`."""
    import psutil

    probe.delays.clear()
    first, sent0, t0 = await visible(env), sender.sent, time.monotonic()
    metrics0 = await _scrape_if_answered(server.base_url)
    process = psutil.Process(server.pid)
    end = t0 + seconds
    while time.monotonic() < end:
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        with contextlib.suppress(psutil.Error):
            rss.append(process.memory_info().rss / 2**20)
    last, sent1, t1 = await visible(env), sender.sent, time.monotonic()
    metrics1 = await _scrape_if_answered(server.base_url)
    moved = sum(advance(first.get(d, 0), seq) for d, seq in last.items())
    deltas = {
        name: (value(metrics1, name) - value(metrics0, name)) / (t1 - t0)
        if metrics0 is not None and metrics1 is not None
        else math.nan
        for name in ("coop_location_flushes_total", "coop_location_reports_shed_total")
    }
    return moved / (t1 - t0), (sent1 - sent0) / (t1 - t0), list(probe.delays), deltas


async def _trace(base_url: str) -> None:
    """Logs the worker's backpressure every second: the gap asked, the reading delay, the
    slowest flush of the last 5 s, and the reports taken, shed (of them stale) and flushes per
    second."""
    names = (
        "coop_location_reports_total",
        "coop_location_reports_shed_total",
        "coop_location_reports_stale_total",
        "coop_location_flushes_total",
    )
    before: list[float] | None = None
    then = time.monotonic()
    while True:
        samples = await _scrape_if_answered(base_url)
        if samples is not None:
            now, at = [value(samples, name) for name in names], time.monotonic()
            if before is not None:
                taken, shed, stale, flushes = (
                    (a - b) / (at - then) for a, b in zip(now, before, strict=True)
                )
                log(
                    f"gap {value(samples, 'coop_location_report_gap_seconds'):.2f} s, reading "
                    f"delay {value(samples, 'coop_location_queue_delay_seconds'):.2f} s, busy "
                    f"{value(samples, 'coop_location_busy_ratio'):.2f}, slowest "
                    f"flush {value(samples, 'coop_location_flush_slowest_seconds'):.2f} s; /s: "
                    f"taken {taken:.0f}, shed {shed:.0f} (stale {stale:.0f}), flushes {flushes:.1f}"
                )
            before, then = now, at
        await asyncio.sleep(1.0)


async def _scrape_if_answered(base_url: str) -> Samples | None:
    """/metrics, or None when the service is too busy to answer it in time (an overloaded worker
    without backpressure may not: that is one of the things the baseline shows)."""
    try:
        return await scrape(base_url)
    except httpx.HTTPError:
        log(f"{base_url}/metrics did not answer in time")
        return None


async def run_overload(
    env: BenchEnv,
    members: list[Member],
    args: argparse.Namespace,
    backpressure: bool,
    heed: bool = False,
) -> Overload:
    """With `heed`, the clients keep to the report gap `overloaded` frames ask for; without,
    they send at the offered rate whatever they are told (a misbehaving app)."""
    setup = "1 worker" + (
        ", clients heed `overloaded`"
        if heed
        else (", clients ignore `overloaded`" if backpressure else ", backpressure off")
    )
    result = Overload(setup, args.overload)
    overrides = {"COOP_LOCATION_BACKPRESSURE": "true" if backpressure else "false"}
    server = env.service(f"overload-{'on' if backpressure else 'off'}", **overrides)
    spots = positions_in_area(len(members), seed=6)
    drivers = [
        Driver(m.id, p.lat, p.lon, sent_at={} if i % SAMPLE_EVERY == 0 else None)
        for i, (m, p) in enumerate(zip(members, spots, strict=True))
    ]
    await env.fetch("TRUNCATE location_driver_position")
    server.start()
    clients: list[WsClient] = []
    try:
        await server.wait_ready_async("/readyz")
        clients, errors = await open_sockets(
            server.base_url,
            "/v1/ws/driver",
            [m.token for m in members],
            ready_on("hello", heed_overloaded(drivers) if heed else None),
        )
        if errors:
            raise RuntimeError(f"{len(errors)} sockets failed: {errors[:3]}")
        clients.sort(key=lambda c: c.index)
        freeze_generator()
        probe = DelayProbe(env, drivers)
        probe.start()
        tracer = asyncio.create_task(_trace(server.base_url)) if args.trace else None
        rss: list[float] = []
        sender = Sender(clients, drivers)
        sender.start(args.overload)
        await asyncio.sleep(args.warmup)
        result.sustained_visible, _, delays, _ = await _window(
            env, server, sender, probe, args.window, rss
        )
        result.sustained_p50 = median(delays)
        result.sustained_p99 = percentile(delays, 99)
        result.rss_mib.append(max(rss))
        await sender.stop()
        log(f"{setup}: sustained {result.sustained_visible:.0f}/s visible; now twice the rate")
        sender = Sender(clients, drivers)
        sender.start(args.overload * 2)
        rss.clear()
        (
            result.overload_visible,
            result.overload_sent,
            delays,
            deltas,
        ) = await _window(env, server, sender, probe, args.overload_s, rss)
        result.overload_p50 = median(delays)
        result.overload_p99 = percentile(delays, 99)
        result.flushes_per_s = deltas["coop_location_flushes_total"]
        result.shed_per_s = deltas["coop_location_reports_shed_total"]
        result.rss_mib.append(max(rss))
        await sender.stop()
        log(f"{setup}: overloaded {result.overload_visible:.0f}/s visible; back to the rate")
        sender = Sender(clients, drivers)
        switched = time.time()
        probe.timed.clear()
        sender.start(args.overload)
        rss.clear()
        await _window(env, server, sender, probe, args.recovery_s, rss)
        result.rss_mib.append(rss[-1])
        await sender.stop()
        await probe.stop()
        if tracer is not None:
            tracer.cancel()
            await asyncio.gather(tracer, return_exceptions=True)
        normal = max(2 * result.sustained_p99, 1.0)
        # Recovered from the first second after which no sampled delay is above normal.
        late = [seen for seen, delay in probe.timed if delay > normal]
        result.recovered_after_s = (max(late) - switched) if late else 0.0
        if args.trace:  # the sampled delays after the overload, by 2 s of when they were seen
            buckets: dict[int, list[float]] = {}
            for seen, delay in probe.timed:
                buckets.setdefault(int((seen - switched) // 2), []).append(delay)
            log(
                f"after the overload (normal: up to {ms(normal)} ms), p99 by 2 s: "
                + ", ".join(
                    f"{2 * k}-{2 * k + 2} s {ms(percentile(v, 99))}"
                    for k, v in sorted(buckets.items())
                )
            )
        after = [delay for seen, delay in probe.timed if seen - switched > 10]
        result.after_p99 = percentile(after, 99) if after else 0.0
    finally:
        for client in clients:
            client.close()
        await asyncio.sleep(1.0)
        server.stop()
    return result


def _rate(value: float, spec: str) -> str:
    return "no answer" if math.isnan(value) else format(value, spec)


def overload_report(results: list[Overload], args: argparse.Namespace) -> str:
    lines = [
        f"\n{machine_line()}",
        f"{args.drivers} drivers; sustained rate {args.overload:.0f}/s, then "
        f"{2 * args.overload:.0f}/s for {args.overload_s:g} s, then {args.overload:.0f}/s again",
        "",
        "| setup | sustained: visible /s, p50 / p99 ms | offered 2x: sent /s | **visible /s** "
        "(share of sustained) | p50 / p99 ms | flushes /s | shed /s | RSS MiB before / peak / "
        "after | back to normal latency after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        share = r.overload_visible / r.sustained_visible if r.sustained_visible else 0.0
        recovered = "-" if r.recovered_after_s is None else f"{r.recovered_after_s:.1f} s"
        lines.append(
            f"| {r.setup} | {r.sustained_visible:,.0f}, {ms(r.sustained_p50)} / "
            f"{ms(r.sustained_p99)} | {r.overload_sent:,.0f} | **{r.overload_visible:,.0f}** "
            f"({share:.0%}) | {ms(r.overload_p50)} / {ms(r.overload_p99)} | "
            f"{_rate(r.flushes_per_s, '.1f')} | {_rate(r.shed_per_s, ',.0f')} | "
            + " / ".join(f"{v:.0f}" for v in r.rss_mib)
            + f" | {recovered} (p99 after 10 s: {ms(r.after_p99)} ms) |"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    limit = raise_open_files_limit()
    if limit < args.drivers + 500:
        log(f"RLIMIT_NOFILE is {limit}; {args.drivers} sockets need more")
        return 2
    started = time.monotonic()
    env = await BenchEnv.create()
    members, _ = await insert_accounts(env, drivers=args.drivers)
    log(f"{len(members)} drivers written to the bench database")
    overrides = {"COOP_GC_STATS": "true"} if args.gc_stats else {}
    overrides.update(dict(item.split("=", 1) for item in args.env))
    if args.overload:
        results: list[Overload] = []
        rows = {"heed": (True, True), "ignore": (True, False), "off": (False, False)}
        for name in args.setups:
            if name == "off" and not args.baseline:
                continue
            backpressure, heed = rows[name]
            results.append(
                await run_overload(env, members, args, backpressure=backpressure, heed=heed)
            )
            print(overload_report(results, args), flush=True)  # kept if a later row fails
        return 0
    steps: list[Step] = []
    if args.baseline:
        steps += await run_setup(
            env,
            "bare uvicorn (baseline)",
            [env.baseline_server()],
            members,
            args.rates,
            args,
            bare=True,
        )
    for workers in args.workers:
        name = "1 worker" if workers == 1 else f"{workers} workers"
        servers = [env.service(f"ingest-{workers}w-{n}", **overrides) for n in range(workers)]
        await env.fetch("TRUNCATE location_driver_position")
        steps += await run_setup(env, name, servers, members, args.rates, args)
    print(report(steps, args, time.monotonic() - started))
    return 0


def _setups(text: str) -> list[str]:
    names = text.split(",")
    unknown = sorted(set(names) - {"heed", "ignore", "off"})
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown setups {unknown}: heed, ignore or off")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench_ingest", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--drivers", type=int, default=10_000)
    parser.add_argument(
        "--rates",
        type=lambda text: [float(r) for r in text.split(",")],
        default=[5000.0, 10000.0, 15000.0, 20000.0],
        help="offered frames per second, one step each (default 5000,10000,15000,20000)",
    )
    parser.add_argument(
        "--workers",
        type=lambda text: [int(w) for w in text.split(",")],
        default=[1, 2],
        help="service processes sharing Redis and PostgreSQL, one setup each (default 1,2)",
    )
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before each window")
    parser.add_argument("--window", type=float, default=20.0, help="measured seconds per step")
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between steps")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    parser.add_argument("--no-gc-stats", dest="gc_stats", action="store_false")
    parser.add_argument(
        "--overload",
        type=float,
        metavar="RATE",
        help="instead of the steps: one worker at RATE (its sustained rate), then twice it for "
        "--overload-s, then RATE again; with backpressure, and off as the baseline",
    )
    parser.add_argument("--overload-s", type=float, default=60.0)
    parser.add_argument(
        "--trace", action="store_true", help="log the overloaded worker's backpressure each second"
    )
    parser.add_argument(
        "--setups",
        type=_setups,
        default=["heed", "ignore", "off"],
        help="the overload's rows: clients that heed `overloaded`, clients that ignore it, "
        "backpressure off (default heed,ignore,off)",
    )
    parser.add_argument("--recovery-s", type=float, default=30.0)
    parser.add_argument(
        "--env", action="append", default=[], metavar="COOP_X=VALUE", help="service settings"
    )
    args = parser.parse_args(argv)
    return run_bench(run(args))


if __name__ == "__main__":
    sys.exit(main())
