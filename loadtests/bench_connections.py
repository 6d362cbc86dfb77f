"""Connections benchmark: the service's memory per idle driver socket at 10,000 sockets, and
whether every one of them still answers.

One service process (`python -m server serve`) against the private PostgreSQL and Redis of
COOP_DATA_DIR (bench database `<db>_bench`); drivers are written straight into the database
with their tokens. One generator process opens the sockets (`loadtests.baseline.WsClient`, a
bare asyncio protocol per socket) and waits for each one's `hello` (authenticated, subscribed,
state sent). The service's RSS (VmRSS) is read after a warm-up of 100 sockets and at each
checkpoint; the cost per socket is the slope of RSS over sockets between the warm-up and the
last checkpoint. Then every socket sends a `ping` frame and must get its `pong`, and every socket
must have received the server's own `ping` frames (every `COOP_WS_PING_INTERVAL_S`).

The baseline, measured in the same run: a bare uvicorn WebSocket app (the same uvicorn, the same
WebSocket implementation, no application) holding the same number of idle sockets.

    python -m loadtests.bench_connections                     # 10,000 sockets, ~3 minutes
    python -m loadtests.bench_connections --sockets 2000 --no-baseline
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass, field

from devtools.processes import ServiceProcess
from loadtests.benchenv import BenchEnv, insert_accounts
from loadtests.metrics import scrape, service_pauses
from loadtests.procstats import CpuMeter, own_cpu_s, pids, raise_open_files_limit, rss_kib
from loadtests.report import log, machine_line, median, percentile
from loadtests.runtime import freeze_generator, run_bench
from loadtests.wsclient import WsClient, await_all, frame_type, open_sockets, ready_on

WARM_SOCKETS = 100
SETTLE_S = 3.0


@dataclass
class Result:
    server: str
    sockets: int = 0
    failed: list[str] = field(default_factory=list)
    rss_kib: list[tuple[int, int]] = field(default_factory=list)  # (sockets, RSS)
    round_trips: list[float] = field(default_factory=list)
    unanswered: int = 0
    got_server_ping: int | None = None
    still_open: int = 0
    open_s: float = 0.0
    generator_cpu_s: float = 0.0
    generator_rss_kib: tuple[int, int] = (0, 0)
    server_cpu_s: float = 0.0
    pauses: str = ""

    @property
    def per_socket_kib(self) -> float:
        """Least-squares slope of RSS over sockets, from the warm-up point on."""
        points = self.rss_kib
        if len(points) < 2:
            return float("nan")
        mean_x = sum(x for x, _ in points) / len(points)
        mean_y = sum(y for _, y in points) / len(points)
        num = sum((x - mean_x) * (y - mean_y) for x, y in points)
        den = sum((x - mean_x) ** 2 for x, _ in points)
        return num / den if den else float("nan")

    @property
    def delta_per_socket_kib(self) -> float:
        (x0, y0), (x1, y1) = self.rss_kib[0], self.rss_kib[-1]
        return (y1 - y0) / (x1 - x0) if x1 > x0 else float("nan")


def checkpoints(total: int) -> list[int]:
    marks = [m for m in (1000, 2500, 5000, 7500) if WARM_SOCKETS < m < total]
    return [*marks, total]


async def run_one(
    name: str,
    server: ServiceProcess,
    tokens: list[str | None],
    path: str,
    *,
    ping_interval_s: float | None,
    with_stats: bool,
) -> Result:
    result = Result(server=name)
    server_pings: dict[int, int] = {}

    def on_frame(client: WsClient, received_at: float, text: str) -> None:
        if frame_type(text) == "ping":
            server_pings[client.index] = server_pings.get(client.index, 0) + 1

    handler = ready_on("hello", ready_on("pong", on_frame))
    # ready_on resolves on hello first; pongs resolve the waiter armed by await_all.
    server.start()
    clients: list[WsClient] = []
    try:
        await server.wait_ready_async("/readyz")
        pid = server.pid
        before = await scrape(server.base_url) if with_stats else {}
        generator_rss_before = rss_kib_self()
        cpu = CpuMeter({"server": pids(pid)})
        cpu.start()
        generator_cpu = own_cpu_s()
        started = time.monotonic()
        opened = 0
        for mark in [WARM_SOCKETS, *checkpoints(len(tokens))]:
            batch, errors = await open_sockets(server.base_url, path, tokens[opened:mark], handler)
            for client in batch:
                client.index += opened
            clients.extend(batch)
            result.failed.extend(errors)
            opened = mark
            await asyncio.sleep(SETTLE_S)
            result.rss_kib.append((len(clients), rss_kib(pid)))
            log(f"{name}: {len(clients)} sockets, RSS {result.rss_kib[-1][1] / 1024:.0f} MiB")
        result.open_s = time.monotonic() - started
        freeze_generator()
        result.sockets = len(clients)
        # Idle long enough for every socket to get at least one of the server's pings.
        if ping_interval_s is not None:
            server_pings.clear()
            await asyncio.sleep(ping_interval_s + 2.0)
            result.got_server_ping = sum(1 for c in clients if server_pings.get(c.index))
        result.round_trips, result.unanswered = await await_all(
            clients, lambda c: c.send_text('{"type":"ping"}'), timeout_s=30.0, spread_s=2.0
        )
        result.still_open = sum(1 for c in clients if c.open)
        _, used = cpu.read()
        result.server_cpu_s = used["server"]
        result.generator_cpu_s = own_cpu_s() - generator_cpu
        result.generator_rss_kib = (generator_rss_before, rss_kib_self())
        if with_stats:
            result.pauses = service_pauses(before, await scrape(server.base_url))
    finally:
        for client in clients:
            client.close()
        await asyncio.sleep(1.0)
        server.stop()
    return result


def rss_kib_self() -> int:
    return rss_kib(os.getpid())


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def report(results: list[Result], args: argparse.Namespace, elapsed_s: float) -> str:
    lines = [
        f"Run: `python -m loadtests.bench_connections --sockets {args.sockets}` "
        f"({elapsed_s:.0f} s); {machine_line()}.",
        "",
        "| server | sockets open | RSS at 100 sockets | RSS at all | **KiB per socket** (slope) "
        "| ping round trip p50 / p99 / max (ms) | answered | got the server's ping | "
        "server CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        pings = "-" if r.got_server_ping is None else f"{r.got_server_ping} / {r.sockets}"
        lines.append(
            f"| {r.server} | {r.sockets} ({len(r.failed)} failed) "
            f"| {r.rss_kib[0][1] / 1024:.0f} MiB | {r.rss_kib[-1][1] / 1024:.0f} MiB "
            f"| **{r.per_socket_kib:.1f}** ({r.delta_per_socket_kib:.1f} first to last) "
            f"| {ms(median(r.round_trips))} / {ms(percentile(r.round_trips, 99))} / "
            f"{ms(max(r.round_trips, default=float('nan')))} "
            f"| {len(r.round_trips)} / {r.sockets} | {pings} | {r.server_cpu_s:.1f} s |"
        )
    if len(results) == 2:
        ours, base = results
        lines += [
            "",
            f"Service vs bare transport: {ours.per_socket_kib / base.per_socket_kib:.2f}x the "
            f"memory per socket ({ours.per_socket_kib - base.per_socket_kib:.1f} KiB of "
            "application state per socket).",
        ]
    for r in results:
        g0, g1 = r.generator_rss_kib
        lines.append(
            f"\n{r.server}: opened in {r.open_s:.0f} s (checkpoints included); generator CPU "
            f"{r.generator_cpu_s:.1f} s over the whole phase, generator RSS "
            f"{g0 / 1024:.0f} -> {g1 / 1024:.0f} MiB "
            f"({(g1 - g0) / max(1, r.sockets):.1f} KiB per client socket)."
        )
        if r.pauses:
            lines.append(f"Service pauses during the phase: {r.pauses}.")
        for error in r.failed[:5]:
            lines.append(f"- failed: {error}")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    limit = raise_open_files_limit()
    needed = args.sockets + 200
    if limit < needed:
        log(f"RLIMIT_NOFILE is {limit}; {args.sockets} sockets need about {needed}")
        return 2
    started = time.monotonic()
    env = await BenchEnv.create()
    drivers, _ = await insert_accounts(env, drivers=args.sockets)
    log(f"{len(drivers)} drivers written to the bench database")
    results = []
    overrides = {"COOP_GC_STATS": "true"} if args.gc_stats else {}
    overrides.update(dict(item.split("=", 1) for item in args.env))
    if args.churn:
        print(await churn(env, [d.token for d in drivers], args, overrides, started))
        return 0
    service = env.service("connections-service", **overrides)
    results.append(
        await run_one(
            "service",
            service,
            [d.token for d in drivers],
            "/v1/ws/driver",
            ping_interval_s=env.settings.ws_ping_interval_s,
            with_stats=args.gc_stats,
        )
    )
    if args.baseline:
        results.append(
            await run_one(
                "bare uvicorn (baseline)",
                env.baseline_server(),
                [None] * args.sockets,
                "/v1/ws/driver",
                ping_interval_s=None,
                with_stats=False,
            )
        )
    print(report(results, args, time.monotonic() - started))
    ok = all(r.unanswered == 0 and r.sockets == args.sockets for r in results)
    return 0 if ok else 1


async def churn(
    env: BenchEnv,
    tokens: list[str | None],
    args: argparse.Namespace,
    overrides: dict[str, str],
    started: float,
) -> str:
    """Reconnect churn: all the sockets open and close, `args.churn` times; the service's RSS
    after each round and its GC pauses say whether closed sockets' garbage is collected."""
    service = env.service("connections-churn", **overrides)
    service.start()
    rss: list[int] = []
    try:
        await service.wait_ready_async("/readyz")
        before = await scrape(service.base_url)
        for _ in range(args.churn):
            clients, errors = await open_sockets(
                service.base_url, "/v1/ws/driver", tokens, ready_on("hello"), progress_every=0
            )
            if errors:
                raise RuntimeError(f"{len(errors)} sockets failed: {errors[:3]}")
            for client in clients:
                client.close()
            await asyncio.sleep(SETTLE_S)
            rss.append(rss_kib(service.pid) // 1024)
        pauses = service_pauses(before, await scrape(service.base_url))
    finally:
        service.stop()
    command = (
        f"python -m loadtests.bench_connections --sockets {args.sockets} --churn {args.churn}"
        + "".join(f" --env {item}" for item in args.env)
    )
    return (
        f"Run: `{command}` ({time.monotonic() - started:.0f} s); {machine_line()}.\n\n"
        f"{args.churn} rounds of {len(tokens)} sockets opened and closed. Service RSS after "
        f"each round (MiB): {', '.join(str(r) for r in rss)}.\nService pauses: {pauses}."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench_connections", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    parser.add_argument(
        "--no-gc-stats",
        dest="gc_stats",
        action="store_false",
        help="do not ask the service for its GC and loop-lag statistics",
    )
    parser.add_argument(
        "--churn",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="instead: open and close all the sockets ROUNDS times, RSS after each round",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="COOP_X=VALUE",
        help="extra service settings, e.g. --env COOP_GC_FREEZE=true",
    )
    args = parser.parse_args(argv)
    if args.sockets <= WARM_SOCKETS:
        parser.error(f"--sockets must be more than {WARM_SOCKETS}")
    return run_bench(run(args))


if __name__ == "__main__":
    sys.exit(main())
