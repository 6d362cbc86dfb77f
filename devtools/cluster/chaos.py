"""`make cluster-chaos`: the simulated city through HAProxy while, in turn, host 1 loses its
network, PostgreSQL's primary is SIGKILLed, Redis's master is SIGKILLed and the matcher
leader's host is frozen (SIGSTOP on all its processes) and thawed; then the invariants of
`make chaos` and the failover table (docs/deployment.md).

The city, the writes checked afterwards and the invariants are loadtests.chaos's; what is the
cluster's is the faults, the waiting for the cluster to be whole again between them, and what
is measured: how long offers stopped, how long until every dropped socket was back, how many
matcher leaders there were at each moment, and every write the apps were told succeeded."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from devtools.cluster import components as c
from devtools.cluster import hosts
from devtools.cluster.hosts import DATA_HOSTS, H1, H3, Host
from dispatch.matching.leadership import STEP_DOWN_S
from loadtests import chaos as single
from server.simulator.city import Simulation
from server.simulator.client import ServiceClient
from server.simulator.config import SimulationConfig

PROXY_URL = f"http://{H3.address}:{c.HTTP_PORT}"
WHOLE_TIMEOUT_S = 240.0  # for the cluster to be whole again after a fault
SAMPLE_S = 0.5
# Before a batch of the frozen leader after its thaw counts as "acting": the thaw itself and
# the worker's first tick.
THAW_WINDOW_S = 20.0


def log(message: str) -> None:
    print(f"[cluster-chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Worker:
    """What loadtests.chaos needs of a worker: its own address (for /readyz and /metrics)."""

    host: Host

    @property
    def base_url(self) -> str:
        return f"http://{self.host.address}:{c.WORKER_PORT}"


@dataclass
class ClusterServices:
    workers: list[Worker]
    env: dict[str, str]


@dataclass
class Measured:
    """What one fault did, beyond loadtests.chaos's own table."""

    detail: str = ""  # which host or process it hit
    lasted_s: float = 0.0
    offers_paused_s: float | None = None  # the longest pause between two offers
    offers_again_s: float | None = None  # from the fault to the end of that pause
    sockets_back_s: float | None = None  # until every dropped driver socket had its hello
    sockets_not_back: int = 0  # dropped driver sockets still not back when the wait ended
    whole_after_s: float | None = None  # until Patroni, Sentinel and both workers were whole
    most_leaders: int = 0
    thawed_leader_batches: int = 0  # batches logged by the frozen leader after its thaw


@dataclass
class Acknowledged:
    """Every write the apps were told succeeded: (route, id) of each 200/201 with an id."""

    writes: list[tuple[float, str, str]] = field(default_factory=list)


def acknowledging_client(base: type[ServiceClient], acked: Acknowledged) -> type[ServiceClient]:
    class Client(base):  # type: ignore[valid-type,misc]
        async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
            response: httpx.Response | None = await super().call(method, path, **kwargs)
            if (
                method == "POST"
                and response is not None
                and response.status_code in (200, 201)
                and (path == "/v1/trips" or path.endswith("/rating"))
            ):
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    route = "trip" if path == "/v1/trips" else "rating"
                    acked.writes.append((time.monotonic(), route, str(response.json()["id"])))
            return response

    return Client


class ClusterChaos(single.Chaos):
    def __init__(self, args: argparse.Namespace, services: ClusterServices) -> None:
        super().__init__(args, services)  # type: ignore[arg-type]
        self.faults = [
            single.Fault(f"host 1's network cut {args.cut_s:g} s", 0.0),
            single.Fault("PostgreSQL's primary killed (SIGKILL)", 0.0),
            single.Fault("Redis's master killed (SIGKILL)", 0.0),
            single.Fault(f"matcher leader's host frozen {args.freeze_s:g} s (SIGSTOP)", 0.0),
        ]
        self.measured = {fault.name: Measured() for fault in self.faults}
        self.acked = Acknowledged()
        self.leader_samples: list[tuple[float, int]] = []  # (monotonic, leaders seen)
        self.leaders_now: dict[str, bool] = {}

    async def run(self) -> int:
        args = self.args
        config = SimulationConfig(
            base_url=PROXY_URL,
            admin_token=c.cluster_secrets()["admin_token"],
            drivers=args.drivers,
            rate_per_min=args.rate,
            speedup=args.speedup,
            duration_s=None,
            seed=args.seed,
            summary_interval_s=30.0,
        )
        client = acknowledging_client(single.tracking_client(self.observed), self.acked)
        city = Simulation(config, out=single.city_log(0), client_class=client)
        self.simulations.append(city)
        task = asyncio.create_task(city.run())
        async with httpx.AsyncClient(timeout=10) as http:
            sampler = asyncio.create_task(self._sample_leaders(http))
            try:
                await self._wait_for_drivers([task])
                await self._open_proposal(http)
                await asyncio.sleep(args.settle_s)
                for fault in self.faults:
                    await self._before_fault(http)
                    await self._inflict_cluster(http, fault)
                    await asyncio.sleep(args.settle_s)
                await self._settle(http)
                await self._measure_offers()
                ok = await self._check(http)
                ok = await self._check_cluster() and ok
            finally:
                sampler.cancel()
                await asyncio.gather(sampler, return_exceptions=True)
        city.stop()
        await asyncio.gather(task, return_exceptions=True)
        return 0 if ok else 1

    async def _open_proposal(self, http: httpx.AsyncClient) -> None:
        # loadtests.chaos opens it on its first worker: here, through the proxy.
        self.services.workers = [_Proxy()]  # type: ignore[list-item]
        single.ADMIN_TOKEN = c.cluster_secrets()["admin_token"]
        try:
            await super()._open_proposal(http)
        finally:
            self.services.workers = [Worker(host) for host in DATA_HOSTS]  # type: ignore[misc]

    # --- leaders -----------------------------------------------------------------------------

    async def _sample_leaders(self, http: httpx.AsyncClient) -> None:
        """Each worker's `coop_matcher_leading`, twice a second. A worker that does not answer
        (frozen, cut off) keeps the last answer it gave for STEP_DOWN_S, since it may still act
        on it until then; no longer, since a leader that has not renewed its lease for that long
        has stepped down by itself (`Matcher.leading`), before any other may take over."""
        answered: dict[str, float] = {}
        while True:
            for host in DATA_HOSTS:
                try:
                    response = await http.get(
                        f"http://{host.address}:{c.WORKER_PORT}/metrics", timeout=1.0
                    )
                    for line in response.text.splitlines():
                        if line.startswith("coop_matcher_leading"):
                            self.leaders_now[host.name] = float(line.rsplit(" ", 1)[1]) >= 1
                            answered[host.name] = time.monotonic()
                except httpx.HTTPError:
                    silent_s = time.monotonic() - answered.get(host.name, time.monotonic())
                    if silent_s > STEP_DOWN_S:
                        self.leaders_now[host.name] = False
            self.leader_samples.append((time.monotonic(), sum(self.leaders_now.values())))
            await asyncio.sleep(SAMPLE_S)

    def _leader_host(self) -> Host:
        for host in DATA_HOSTS:
            if self.leaders_now.get(host.name):
                return host
        return H1

    # --- the faults --------------------------------------------------------------------------

    async def _inflict_cluster(self, http: httpx.AsyncClient, fault: single.Fault) -> None:
        measured = self.measured[fault.name]
        log(f"fault: {fault.name}")
        fault.started = time.monotonic()
        fault.started_wall = datetime.now(UTC)
        action: Callable[[Measured], Coroutine[Any, Any, None]]
        if fault.name.startswith("host 1"):
            action = self._cut_host_1
        elif fault.name.startswith("PostgreSQL"):
            action = self._kill_postgres
        elif fault.name.startswith("Redis"):
            action = self._kill_redis
        else:
            action = self._freeze_leader
        await action(measured)
        fault.ended = time.monotonic()
        measured.lasted_s = fault.ended - fault.started
        # Both clocks run together from the fault: the cluster whole again, every dropped driver
        # socket back (apps back off up to 10 s between tries).
        await asyncio.gather(self._wait_whole(fault, measured), self._wait_sockets(fault, measured))
        fault.ready_after_s = measured.whole_after_s
        measured.most_leaders = max(
            (n for at, n in self.leader_samples if at >= fault.started), default=0
        )
        log(
            f"  whole again after {_s(measured.whole_after_s)}; driver sockets back after "
            f"{_s(measured.sockets_back_s)} ({measured.sockets_not_back} not back); at most "
            f"{measured.most_leaders} matcher leader(s) seen"
        )

    def _drivers_not_back(self, since: float) -> int:
        """Driver sockets dropped since `since` whose app has no newer `hello` yet."""
        newest: dict[str, float] = {}
        for record in self.observed.sockets:
            if record.account is not None and record.hello_at is not None:
                newest[record.account] = max(newest.get(record.account, 0.0), record.hello_at)
        return sum(
            1
            for record in self.observed.sockets
            if record.role == "driver"
            and record.closed_at is not None
            and record.closed_at >= since
            and not record.left
            and newest.get(str(record.account), 0.0) <= record.closed_at
        )

    async def _wait_sockets(self, fault: single.Fault, measured: Measured) -> None:
        deadline = time.monotonic() + measured.lasted_s + single.RECONNECT_WAIT_S
        while time.monotonic() < deadline:
            if fault.ended and not self._drivers_not_back(fault.started):
                measured.sockets_back_s = self._last_hello_since(fault.started)
                return
            await asyncio.sleep(single.READY_POLL_S)
        measured.sockets_not_back = self._drivers_not_back(fault.started)

    def _last_hello_since(self, since: float) -> float:
        """From `since` to the last `hello` of a driver whose socket dropped after `since`."""
        latest = since
        for record in self.observed.sockets:
            if (
                record.role == "driver"
                and record.closed_at is not None
                and record.closed_at >= since
                and not record.left
            ):
                later = [
                    r.hello_at
                    for r in self.observed.sockets
                    if r.account == record.account and r.hello_at and r.hello_at > record.closed_at
                ]
                if later:
                    latest = max(latest, min(later))
        return latest - since

    async def _wait_whole(self, fault: single.Fault, measured: Measured) -> None:
        """Until Patroni has a primary and a streaming synchronous replica, the Sentinels a
        master with a replica, and both workers answer /readyz 200."""
        deadline = fault.started + WHOLE_TIMEOUT_S
        while time.monotonic() < deadline:
            if await asyncio.to_thread(_whole):
                measured.whole_after_s = time.monotonic() - fault.started
                return
            await asyncio.sleep(1.0)
        log(f"  the cluster was not whole again within {WHOLE_TIMEOUT_S:g} s: {c.patroni_roles()}")

    async def _cut_host_1(self, measured: Measured) -> None:
        roles = c.patroni_roles()
        measured.detail = f"h1 held: PostgreSQL {roles.get('h1', '?')}, Redis " + (
            "master" if c.redis_master() == H1.address else "replica"
        )
        hosts.cut(H1)
        try:
            await asyncio.sleep(self.args.cut_s)
        finally:
            hosts.reconnect(H1)

    async def _kill_postgres(self, measured: Measured) -> None:
        primary = c.primary()
        assert primary is not None, "no PostgreSQL primary to kill"
        pidfile = c.host_dir(primary) / "pg" / "data" / "postmaster.pid"
        pid = int(pidfile.read_text().split()[0])
        measured.detail = f"postmaster on {primary.name} (pid {pid})"
        os.kill(pid, signal.SIGKILL)

    async def _kill_redis(self, measured: Measured) -> None:
        address = c.redis_master()
        host = next(h for h in DATA_HOSTS if h.address == address)
        measured.detail = f"redis-server on {host.name}"
        c.signal_component(host, "redis", signal.SIGKILL)
        # As systemd's Restart= would, a while later: it comes back as a replica (Sentinel
        # tells it so), not as a second master.
        await asyncio.sleep(self.args.redis_down_s)
        c.pid_path(host, "redis").unlink(missing_ok=True)
        argv = c.argv_for(host, "redis", {"redis": _conf(host, "redis.conf")})
        # As the unit's start does (docs/deployment.md): it asks Sentinel for the master first,
        # or HAProxy would see two masters until Sentinel demotes the returning one.
        master = c.redis_master()
        if master is not None and master != host.address:
            argv += ["--replicaof", master, str(c.REDIS_PORT)]
        c.start(host, "redis", argv)

    async def _freeze_leader(self, measured: Measured) -> None:
        host = self._leader_host()
        roles = c.patroni_roles()
        measured.detail = f"{host.name} (PostgreSQL {roles.get(host.name, '?')})"
        frozen = hosts.pids(host)
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(self.args.freeze_s)
        finally:
            for pid in frozen:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        thawed_at = datetime.now()  # the worker's log is in local time
        await asyncio.sleep(THAW_WINDOW_S)
        measured.thawed_leader_batches = _batches_logged(host, thawed_at)

    # --- afterwards --------------------------------------------------------------------------

    async def _measure_offers(self) -> None:
        """The longest pause between two offers written around each fault, from the database."""
        from coop.db import create_engine

        engine = create_engine(self.services.env["COOP_DATABASE_URL"], pool_size=1)
        try:
            async with engine.connect() as connection:
                for number, fault in enumerate(self.faults):
                    start = fault.started_wall
                    # Up to the next fault: a pause after it is that fault's.
                    end = start + timedelta(seconds=150)
                    if number + 1 < len(self.faults):
                        end = min(end, self.faults[number + 1].started_wall)
                    rows = await connection.execute(
                        text(
                            "SELECT created_at FROM trip_offer WHERE created_at BETWEEN :a AND :b "
                            "ORDER BY created_at"
                        ),
                        {"a": start, "b": end},
                    )
                    times = [start, *(row[0] for row in rows)]
                    if len(times) < 2:
                        continue
                    gaps = [(b - a, b) for a, b in zip(times, times[1:], strict=False)]
                    longest, resumed = max(gaps)
                    measured = self.measured[fault.name]
                    measured.offers_paused_s = longest.total_seconds()
                    measured.offers_again_s = (resumed - start).total_seconds()
        finally:
            await engine.dispose()

    async def _check_cluster(self) -> bool:
        from coop.db import create_engine

        problems = []
        engine = create_engine(self.services.env["COOP_DATABASE_URL"], pool_size=1)
        try:
            async with engine.connect() as connection:
                trips = {str(r[0]) for r in await connection.execute(text("SELECT id FROM trip"))}
                ratings = {
                    str(r[0])
                    for r in await connection.execute(text("SELECT id FROM reputation_rating"))
                }
        finally:
            await engine.dispose()
        stored = {"trip": trips, "rating": ratings}
        missing = [(route, id_) for _, route, id_ in self.acked.writes if id_ not in stored[route]]
        total = len(self.acked.writes)
        print(
            ("  ok   " if not missing else "  FAIL ")
            + f"{total - len(missing)} of {total} acknowledged writes (trips requested, ratings) "
            "are in the database"
        )
        if missing:
            problems.append(f"acknowledged writes missing: {missing[:5]}")
        two = sum(1 for _, n in self.leader_samples if n > 1)
        print(
            ("  ok   " if not two else "  FAIL ")
            + f"{len(self.leader_samples)} samples of the matcher leaders, {two} with two"
        )
        if two:
            problems.append(f"two matcher leaders seen in {two} samples")
        self._failover_table()
        for problem in problems:
            print(f"PROBLEM: {problem}")
        return not problems

    def _failover_table(self) -> None:
        print()
        print(
            "| fault | hit | offers paused (longest gap) | offers again after "
            "| dropped driver sockets all back after | cluster whole again after "
            "| most matcher leaders "
            "| batches by the thawed leader |"
        )
        print("|---|---|---|---|---|---|---|---|")

        for fault in self.faults:
            m = self.measured[fault.name]
            thawed = str(m.thawed_leader_batches) if "frozen" in fault.name else "-"
            back = _s(m.sockets_back_s) if not m.sockets_not_back else f"{m.sockets_not_back} not"
            print(
                f"| {fault.name} | {m.detail} | {_s(m.offers_paused_s)} | {_s(m.offers_again_s)} "
                f"| {back} | {_s(m.whole_after_s)} | {m.most_leaders} | {thawed} |"
            )
        print()


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


class _Proxy:
    base_url = PROXY_URL


def _conf(host: Host, name: str) -> Any:
    return c.host_dir(host) / "conf" / name


def _whole() -> bool:
    roles = c.patroni_roles()
    if sorted(roles.values()) != ["leader/running", "sync_standby/running"]:
        return False
    master = c.redis_master()
    if master is None:
        return False
    try:
        info = c.redis_command(master, c.REDIS_PORT, "INFO", "replication")
    except OSError:
        return False
    if "role:master" not in info or "connected_slaves:1" not in info:
        return False
    return all(
        c.http_status(f"http://{h.address}:{c.WORKER_PORT}/readyz") == 200 for h in DATA_HOSTS
    )


def _batches_logged(host: Host, since: datetime) -> int:
    """Batches the host's worker logged after `since` (its log lines start with the time)."""
    import json

    count = 0
    path = c.host_dir(host) / "logs" / "worker.log"
    for line in path.read_text(errors="replace").splitlines()[-5000:]:
        if " batch: " not in line:
            continue
        with contextlib.suppress(ValueError, KeyError):
            at = datetime.strptime(json.loads(line)["at"], "%Y-%m-%d %H:%M:%S,%f")
            if at >= since:
                count += 1
    return count


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make cluster-chaos", description=__doc__)
    parser.add_argument("--drivers", type=int, default=300)
    # Few enough that drivers stay free to be offered trips: a pause in offers is then the
    # fault's, not a city with every driver busy.
    parser.add_argument("--rate", type=float, default=30.0, help="rider requests per minute")
    parser.add_argument("--cut-s", type=float, default=45.0, help="how long host 1 is cut off")
    parser.add_argument("--freeze-s", type=float, default=30.0)
    parser.add_argument("--redis-down-s", type=float, default=15.0)
    parser.add_argument("--settle-s", type=float, default=20.0, help="calm before each fault")
    parser.add_argument("--seed", type=int, default=28)
    args = parser.parse_args(argv)
    # What loadtests.chaos's checks read.
    args.grace_s = 25.0
    args.pause_s = 30.0
    args.duration = 0.0
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    from loadtests.procstats import raise_open_files_limit

    raise_open_files_limit()
    if not _whole():
        log("the cluster is not running, or not whole: `make cluster` first")
        return 1
    env = c.worker_env(H1)
    # The city runs as fast as the workers' meter counts (deploy/coop.env), or its cars would
    # be refused for implausible speed.
    args.speedup = float(env.get("COOP_METER_TIME_SCALE", "1"))
    services = ClusterServices(workers=[Worker(h) for h in DATA_HOSTS], env=env)
    started = time.monotonic()
    code = asyncio.run(ClusterChaos(args, services).run())
    log(f"done in {time.monotonic() - started:.0f} s (`make cluster-stop` stops the cluster)")
    return code
