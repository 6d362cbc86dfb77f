"""The chaos run: two workers under a simulated city while PostgreSQL, Redis and a worker fail on
a fixed schedule; then the invariants, and a table of what each fault did.

    python -m loadtests.chaos               # `make chaos`: 10 minutes, 1,000 drivers
    python -m loadtests.chaos --drivers 40 --duration 50 --grace-s 6    # the suite's small run

It starts a private PostgreSQL and Redis of its own (in a temporary folder, so nothing else on
the machine is disturbed), migrates, and starts two `serve` workers behind no load balancer:
the simulated city (`server.simulator`) is split in two, each half talking to one worker. On a
fixed schedule (fractions of the duration) it then:

1. kills one worker with SIGKILL and starts it again;
2. restarts Redis;
3. restarts PostgreSQL;
4. pauses Redis (SIGSTOP) for longer than the driver grace period, then resumes it (SIGCONT).

Before each fault it casts ballots and files an appeal (ratings come from the simulated riders),
to check afterwards that everything written before a fault is still there. After the last fault
the city runs on for a while, then the checks run while it is still connected:

- the invariants of `loadtests.invariants` (one terminal state or still progressing, no stuck
  trip, no driver with two trips, no offer accepted twice, ...);
- every ballot, rating and appeal acknowledged before a fault is in the database;
- the audit chain verifies;
- every rider and driver socket that was open at a fault either stayed open or reconnected and
  got its state (a `hello` after the fault), and no socket saw a gap in `seq`.

For each fault the table gives how long until both workers' `/readyz` answered 200 again, the
HTTP requests that failed meanwhile (by status), the frames the workers knew they could not
deliver (and the sockets they told to reconnect), the sockets dropped, and the trips open at
the fault with how they ended. Exit status 0 when every check holds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from websockets.asyncio.client import ClientConnection
from websockets.protocol import State

from devtools import localdev
from devtools.processes import ServiceProcess, signal_on_parent_death
from loadtests import keeper
from server.simulator.city import Simulation
from server.simulator.client import ServiceClient
from server.simulator.config import SimulationConfig

logger = logging.getLogger("coop.chaos")

ADMIN_TOKEN = "chaos-admin-token-0123456789abcdef"
READY_POLL_S = 0.2
MAX_RECOVERY_S = 120.0
RECONNECT_WAIT_S = 45.0  # for every dropped socket to be back (clients back off up to 10 s)


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


def city_log(number: int) -> Callable[[str], None]:
    return lambda line: log(f"city {number}: {line}")


# --- what the clients saw --------------------------------------------------------------------


@dataclass
class SocketRecord:
    """One connection of one simulated app."""

    opened_at: float
    account: str | None = None  # from its `hello`
    role: str | None = None
    hello_at: float | None = None
    closed_at: float | None = None
    close_code: int | None = None
    left: bool = False  # the app closed it itself (its rider went home, the run ends)
    last_seq: int = 0
    gaps: int = 0


@dataclass
class Observed:
    """Every call and socket of the simulated apps, timed (monotonic seconds)."""

    calls: list[tuple[float, str, int | None]] = field(default_factory=list)  # (at, route, status)
    sockets: list[SocketRecord] = field(default_factory=list)
    ratings: list[tuple[float, str]] = field(default_factory=list)


class TrackedSocket:
    """A client connection that records its `hello`, its `seq` numbers and how it closed."""

    def __init__(self, connection: ClientConnection, record: SocketRecord) -> None:
        self._connection = connection
        self.record = record

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    async def __aenter__(self) -> TrackedSocket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.record.left = self.record.closed_at is None
        await self._connection.close()

    async def close(self, *args: Any, **kwargs: Any) -> None:
        self.record.left = self.record.closed_at is None
        await self._connection.close(*args, **kwargs)

    async def send(self, message: Any) -> None:
        await self._connection.send(message)

    def __aiter__(self) -> Any:
        return self._frames()

    async def _frames(self) -> Any:
        record = self.record
        try:
            async for raw in self._connection:
                try:
                    frame = json.loads(raw)
                except ValueError:
                    frame = {}
                seq = frame.get("seq") if isinstance(frame, dict) else None
                if isinstance(seq, int):
                    if seq != record.last_seq + 1:
                        record.gaps += 1
                    record.last_seq = seq
                if isinstance(frame, dict) and frame.get("type") == "hello":
                    record.account = str(frame.get("id"))
                    record.role = str(frame.get("role"))
                    record.hello_at = time.monotonic()
                yield raw
        except (asyncio.CancelledError, GeneratorExit):
            # The app stopped reading (its rider went home, the run ends): unless the socket was
            # closed or dropped already, the app is the one leaving.
            if self._connection.protocol.state is State.OPEN:
                record.left = True
            raise
        finally:
            if record.closed_at is None:
                record.closed_at = time.monotonic()
                record.close_code = self._connection.close_code


def tracking_client(observed: Observed) -> type[ServiceClient]:
    class TrackingClient(ServiceClient):
        async def call(
            self,
            method: str,
            path: str,
            *,
            token: str | None,
            body: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None,
        ) -> httpx.Response | None:
            now = time.monotonic()  # a call counts for the moment it was made
            response = await super().call(method, path, token=token, body=body, headers=headers)
            route = f"{method} {re.sub(r'[0-9a-f-]{36}', '{id}', path)}"
            observed.calls.append((now, route, None if response is None else response.status_code))
            if response is not None and response.status_code == 201 and path.endswith("/rating"):
                observed.ratings.append((now, str(response.json()["id"])))
            return response

        async def connect(self, path: str, token: str) -> ClientConnection:
            connection = await super().connect(path, token)
            record = SocketRecord(opened_at=time.monotonic())
            observed.sockets.append(record)
            return TrackedSocket(connection, record)  # type: ignore[return-value]

    return TrackingClient


# --- the services ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Services:
    """A private PostgreSQL and Redis, and the two workers, in a folder of their own."""

    def __init__(self, base: Path, env: dict[str, str]) -> None:
        self.base = base
        self.env = env
        self.workers: list[ServiceProcess] = []

    def start_stores(self) -> None:
        localdev.ensure_packages(need_pg=True, need_redis=True)
        localdev.pg_up(self.base)
        localdev.redis_up(self.base)

    def start_workers(self, count: int) -> None:
        for number in range(count):
            worker = ServiceProcess(
                host="127.0.0.1",
                port=free_port(),
                log_path=self.base / f"worker-{number}.log",
                env=self.env,
            )
            worker.start()
            self.workers.append(worker)
        for worker in self.workers:
            worker.wait_ready(timeout_s=180)

    def kill_worker(self, number: int) -> None:
        process = self.workers[number].process
        assert process is not None
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        self.workers[number].process = None

    def start_worker(self, number: int) -> None:
        worker = self.workers[number]
        deadline = time.monotonic() + 30
        while True:
            try:
                worker.start()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def redis_pid(self) -> int:
        _, _, pidfile = localdev.redis_paths(self.base)
        pid = localdev.pid_alive(pidfile)
        assert pid is not None, "Redis is not running"
        return pid

    def stop(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                worker.stop()
        keeper.stop_stores(self.base)


# --- faults ----------------------------------------------------------------------------------


@dataclass
class Fault:
    name: str
    at_fraction: float
    started: float = 0.0  # monotonic
    started_wall: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended: float = 0.0  # when the fault itself was over (the restart done, Redis resumed)
    ready_after_s: float | None = None  # from the start of the fault to /readyz 200 on both
    lost_frames: int = 0
    resynced: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    dropped_sockets: int = 0
    affected: Counter[str] = field(default_factory=Counter)
    unrecovered_sockets: int = 0
    riders_gone: int = 0  # dropped rider sockets whose trip ended before they came back


async def scrape(http: httpx.AsyncClient, worker: ServiceProcess) -> dict[str, float]:
    try:
        response = await http.get(f"{worker.base_url}/metrics")
    except httpx.HTTPError:
        return {}
    figures: dict[str, float] = {}
    for line in response.text.splitlines():
        if line.startswith("coop_ws_") and " " in line:
            name, value = line.rsplit(" ", 1)
            figures[name] = float(value)
    return figures


async def all_ready(http: httpx.AsyncClient, workers: list[ServiceProcess]) -> bool:
    for worker in workers:
        try:
            response = await http.get(f"{worker.base_url}/readyz")
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
    return True


class Chaos:
    def __init__(self, args: argparse.Namespace, services: Services) -> None:
        self.args = args
        self.services = services
        self.observed = Observed()
        self.faults = [
            Fault("worker killed (SIGKILL) and restarted", 0.12),
            Fault("Redis restarted", 0.3),
            Fault("PostgreSQL restarted", 0.48),
            Fault(f"Redis paused {args.pause_s:g} s (SIGSTOP)", 0.62),
        ]
        self.ballots: list[tuple[str, str, str, str]] = []  # (base URL, token, driver, choice)
        self.appeals: list[str] = []
        self.simulations: list[Simulation] = []
        self.proposal_id: str | None = None
        self.committee_token: str | None = None
        self.rng = random.Random(args.seed)

    # --- the schedule ---

    async def run(self) -> int:
        args = self.args
        workers = self.services.workers
        per_worker = [args.drivers // 2, args.drivers - args.drivers // 2]
        for number, worker in enumerate(workers):
            config = SimulationConfig(
                base_url=worker.base_url,
                admin_token=ADMIN_TOKEN,
                drivers=per_worker[number],
                rate_per_min=args.rate / 2,
                speedup=args.speedup,
                duration_s=None,  # until the checks are done
                seed=None if args.seed is None else args.seed + number,
                summary_interval_s=max(5.0, args.duration / 10),
            )
            self.simulations.append(
                Simulation(
                    config,
                    out=city_log(number),
                    client_class=tracking_client(self.observed),
                )
            )
        cities = [asyncio.create_task(city.run()) for city in self.simulations]
        async with httpx.AsyncClient(timeout=10) as http:
            await self._wait_for_drivers(cities)
            await self._open_proposal(http)
            started = time.monotonic()  # the schedule counts from a registered city
            for fault in self.faults:
                await self._sleep_until(started + fault.at_fraction * args.duration)
                await self._before_fault(http)
                await self._inflict(http, fault)
            # Let the city run on, then check while it is still connected.
            await self._sleep_until(started + args.duration)
            await self._settle(http)
            ok = await self._check(http)
        for city in self.simulations:
            city.stop()
        await asyncio.gather(*cities, return_exceptions=True)
        return 0 if ok else 1

    async def _sleep_until(self, moment: float) -> None:
        await asyncio.sleep(max(0.0, moment - time.monotonic()))

    async def _wait_for_drivers(self, cities: list[asyncio.Task[Any]]) -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            for city in cities:
                if city.done():
                    city.result()  # raises what stopped it
                    raise RuntimeError("a simulated city stopped before the run began")
            if all(len(city.drivers) == city.config.drivers for city in self.simulations):
                return
            await asyncio.sleep(0.2)
        raise RuntimeError("the simulated drivers did not register")

    # --- writes to check afterwards ---

    async def _open_proposal(self, http: httpx.AsyncClient) -> None:
        from bargaining.terms import load_founding_terms, terms_to_wire

        base = self.services.workers[0].base_url
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        created = await http.post(
            f"{base}/v1/drivers",
            timeout=60,
            headers=admin,
            json={
                "name": "Chaos committee",
                "member_number": f"CHAOS-{uuid.uuid4().hex[:8]}",
                "committee": True,
                "vehicle": {"plate": "CHAOS 1", "seats": 4, "wheelchair_accessible": False},
            },
        )
        created.raise_for_status()
        self.committee_token = created.json()["token"]
        terms: Any = terms_to_wire(load_founding_terms())
        terms["fares"]["standard"]["per_km"] = "1.11"
        closes = datetime.now(UTC) + timedelta(hours=6)
        body = {
            "title": "Chaos run ballot",
            "rationale": "Ballots cast before each fault must survive it.",
            "terms": terms,
            "effective_from": None,
            "voting_closes_at": closes.isoformat(),
        }
        headers = {"Authorization": f"Bearer {self.committee_token}"}
        # Opening a proposal estimates its impact on past trips: slow on a busy machine.
        proposal = await http.post(f"{base}/v1/proposals", headers=headers, json=body, timeout=120)
        proposal.raise_for_status()
        self.proposal_id = proposal.json()["id"]

    async def _before_fault(self, http: httpx.AsyncClient) -> None:
        """A few ballots and an appeal, acknowledged just before the fault."""
        drivers = [driver for city in self.simulations for driver in city.drivers]
        voted = {driver for _, _, driver, _ in self.ballots}
        for driver in self.rng.sample(drivers, min(5, len(drivers))):
            if driver.account.id in voted:
                continue
            choice = self.rng.choice(["yes", "no", "abstain"])
            with contextlib.suppress(httpx.HTTPError):
                response = await http.post(
                    f"{driver.client.base_url}/v1/proposals/{self.proposal_id}/ballot",
                    headers={"Authorization": f"Bearer {driver.account.token}"},
                    json={"choice": choice},
                )
                if response.status_code == 200:
                    self.ballots.append(
                        (driver.client.base_url, driver.account.token, driver.account.id, choice)
                    )
        for driver in self.rng.sample(drivers, len(drivers)):
            headers = {"Authorization": f"Bearer {driver.account.token}"}
            with contextlib.suppress(httpx.HTTPError):
                ratings = await http.get(
                    f"{driver.client.base_url}/v1/drivers/me/ratings", headers=headers
                )
                if ratings.status_code != 200:
                    continue
                for rating in ratings.json():
                    if rating.get("appeal") is not None:
                        continue
                    appeal = await http.post(
                        f"{driver.client.base_url}/v1/ratings/{rating['id']}/appeal",
                        headers=headers,
                        json={"statement": "The traffic was not mine to control."},
                    )
                    if appeal.status_code == 201:
                        self.appeals.append(str(appeal.json()["id"]))
                        return

    # --- the faults ---

    async def _inflict(self, http: httpx.AsyncClient, fault: Fault) -> None:
        services = self.services
        before = [await scrape(http, worker) for worker in services.workers]
        log(f"fault: {fault.name}")
        fault.started = time.monotonic()
        fault.started_wall = datetime.now(UTC)
        if fault.name.startswith("worker"):
            services.kill_worker(0)
            services.start_worker(0)
        elif fault.name == "Redis restarted":
            await asyncio.to_thread(localdev.redis_down, services.base)
            await asyncio.to_thread(localdev.redis_up, services.base)
        elif fault.name == "PostgreSQL restarted":
            await asyncio.to_thread(localdev.pg_down, services.base)
            await asyncio.to_thread(localdev.pg_up, services.base)
        else:
            pid = services.redis_pid()
            os.kill(pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(self.args.pause_s)
            finally:
                os.kill(pid, signal.SIGCONT)
        fault.ended = time.monotonic()
        deadline = fault.started + MAX_RECOVERY_S
        while not await all_ready(http, services.workers):
            if time.monotonic() > deadline:
                log(f"  not ready {MAX_RECOVERY_S:g} s after the fault")
                break
            await asyncio.sleep(READY_POLL_S)
        else:
            fault.ready_after_s = time.monotonic() - fault.started
        # Clients reconnect with a back-off of up to 10 s: wait until every socket the fault
        # dropped is back (or a bound passes) before going on.
        deadline = time.monotonic() + RECONNECT_WAIT_S
        while self._dropped_and_not_back(fault.started) and time.monotonic() < deadline:
            await asyncio.sleep(READY_POLL_S)
        after = [await scrape(http, worker) for worker in services.workers]
        for old, new in zip(before, after, strict=True):
            for name, attr in (
                ("coop_ws_frames_lost_total", "lost_frames"),
                ("coop_ws_resyncs_total", "resynced"),
            ):
                was, now = old.get(name, 0.0), new.get(name, 0.0)
                delta = now - was if now >= was else now  # a restarted worker counts afresh
                setattr(fault, attr, getattr(fault, attr) + int(delta))
        log(
            f"  ready again after {fault.ready_after_s or float('nan'):.1f} s; "
            f"{fault.lost_frames} frames known lost, {fault.resynced} sockets resynced"
        )

    def _dropped_and_not_back(self, since: float) -> int:
        """Sockets closed by the service since `since` whose app has no newer `hello` yet."""
        newest: dict[str, float] = {}
        for record in self.observed.sockets:
            if record.account is not None and record.hello_at is not None:
                newest[record.account] = max(newest.get(record.account, 0.0), record.hello_at)
        return sum(
            1
            for record in self.observed.sockets
            if record.closed_at is not None
            and record.closed_at >= since
            and not record.left
            and record.account is not None
            and newest.get(record.account, 0.0) <= record.closed_at
        )

    async def _settle(self, http: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + MAX_RECOVERY_S
        while not await all_ready(http, self.services.workers) and time.monotonic() < deadline:
            await asyncio.sleep(READY_POLL_S)
        deadline = time.monotonic() + RECONNECT_WAIT_S
        while self._dropped_and_not_back(0.0) and time.monotonic() < deadline:
            await asyncio.sleep(READY_POLL_S)

    # --- afterwards ---

    async def _check(self, http: httpx.AsyncClient) -> bool:
        from coop.audit import describe, verify_database
        from coop.db import create_engine
        from loadtests import invariants

        database_url = self.services.env["COOP_DATABASE_URL"]
        engine = create_engine(database_url, pool_size=1, max_overflow=0)
        problems: list[str] = []
        try:
            async with engine.connect() as connection:
                report = await invariants.check(
                    connection,
                    slack_s=60.0,
                    stuck_s=self.args.grace_s + 60.0,
                )
                for fault in self.faults:
                    rows = await connection.execute(
                        text(
                            "SELECT status::text, count(*) FROM trip "
                            "WHERE requested_at <= :at AND (ended_at IS NULL OR ended_at >= :at) "
                            "GROUP BY 1"
                        ),
                        {"at": fault.started_wall},
                    )
                    fault.affected = Counter({str(row[0]): int(row[1]) for row in rows})
                ratings = {
                    str(row[0])
                    for row in await connection.execute(text("SELECT id FROM reputation_rating"))
                }
                appeals = {
                    str(row[0])
                    for row in await connection.execute(text("SELECT id FROM reputation_appeal"))
                }
                # A rider's app listens while its trip is open; once it ended it may leave.
                riding = {
                    str(row[0])
                    for row in await connection.execute(
                        text(
                            "SELECT rider_id FROM trip "
                            "WHERE status IN ('requested', 'assigned', 'arrived', 'in_progress')"
                        )
                    )
                }
        finally:
            await engine.dispose()
        # Ballots are sealed in the database: each voter reads their own back, as the API shows it.
        missing_ballots = []
        for base_url, token, driver_id, choice in self.ballots:
            try:
                own = await http.get(
                    f"{base_url}/v1/proposals/{self.proposal_id}/ballot",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=60,
                )
                if own.status_code != 200 or own.json().get("choice") != choice:
                    missing_ballots.append(driver_id)
            except httpx.HTTPError:
                missing_ballots.append(driver_id)
        last_fault = self.faults[-1].started
        written = [rid for at, rid in self.observed.ratings if at < last_fault]
        missing_ratings = [rid for rid in written if rid not in ratings]
        missing_appeals = [aid for aid in self.appeals if aid not in appeals]
        for kind, missing, total in (
            ("ballots", missing_ballots, len(self.ballots)),
            ("ratings", missing_ratings, len(written)),
            ("appeals", missing_appeals, len(self.appeals)),
        ):
            line = f"{total - len(missing)} of {total} {kind} written before a fault are there"
            print(("  ok   " if not missing else "  FAIL ") + line)
            if missing:
                problems.append(f"{kind} missing: {missing[:5]}")
        audit = await verify_database(database_url)
        print(("  ok   " if audit.ok else "  FAIL ") + describe(audit))
        if not audit.ok:
            problems.append("audit chain broken")
        socket_problems = self._check_sockets(riding)
        problems.extend(socket_problems)
        print("\n".join(report.lines()))
        if not report.ok:
            problems.append("invariants violated")
        self._table()
        for problem in problems:
            print(f"PROBLEM: {problem}")
        print("chaos run: every check holds" if not problems else "chaos run: FAILED")
        return not problems

    def _check_sockets(self, riding: set[str]) -> list[str]:
        sockets = self.observed.sockets
        problems = []
        gaps = sum(record.gaps for record in sockets)
        print(
            ("  ok   " if gaps == 0 else "  FAIL ")
            + f"{len(sockets)} connections, {gaps} gaps in seq"
        )
        if gaps:
            problems.append(f"{gaps} gaps in seq")
        hellos: dict[str, list[float]] = {}
        for record in sockets:
            if record.account is not None and record.hello_at is not None:
                hellos.setdefault(record.account, []).append(record.hello_at)
        for number, fault in enumerate(self.faults):
            window_end = fault.ended + (fault.ready_after_s or MAX_RECOVERY_S)
            for started_at, _, status in self.observed.calls:
                if fault.started <= started_at <= window_end and (status is None or status >= 500):
                    fault.failed["no answer" if status is None else str(status)] += 1
            # A socket is the fault's if it closed between this fault and the next one.
            until = (
                self.faults[number + 1].started if number + 1 < len(self.faults) else float("inf")
            )
            for record in sockets:
                if (
                    record.hello_at is None
                    or record.hello_at > fault.started
                    or record.closed_at is None
                    or not fault.started <= record.closed_at < until
                    or record.left
                ):
                    continue  # not open at the fault, never dropped, or closed by its app
                fault.dropped_sockets += 1
                closed_at = record.closed_at
                if any(at > closed_at for at in hellos.get(str(record.account), [])):
                    continue
                if record.role == "rider" and record.account not in riding:
                    fault.riders_gone += 1  # its trip ended meanwhile: the app may have left
                else:
                    fault.unrecovered_sockets += 1
            if fault.unrecovered_sockets:
                problems.append(
                    f"{fault.name}: {fault.unrecovered_sockets} sockets did not reconnect"
                )
        recovered = all(fault.unrecovered_sockets == 0 for fault in self.faults)
        print(
            ("  ok   " if recovered else "  FAIL ")
            + "every socket open at a fault stayed open or reconnected and got its state"
        )
        return problems

    def _table(self) -> None:
        print()
        print(
            "| fault | /readyz 200 again after | requests failed during it (by status) "
            "| frames known lost (sockets resynced) "
            "| sockets dropped / reconnected (/ riders done meanwhile) "
            "| trips open at the fault: how they ended |"
        )
        print("|---|---|---|---|---|---|")
        for fault in self.faults:
            ready = "never" if fault.ready_after_s is None else f"{fault.ready_after_s:.1f} s"
            failed = ", ".join(f"{k}: {v}" for k, v in sorted(fault.failed.items())) or "none"
            ends = ", ".join(f"{k} {v}" for k, v in sorted(fault.affected.items())) or "none"
            print(
                f"| {fault.name} | {ready} | {failed} | {fault.lost_frames} "
                f"({fault.resynced}) | {fault.dropped_sockets} / "
                f"{fault.dropped_sockets - fault.unrecovered_sockets - fault.riders_gone}"
                f"{f' / {fault.riders_gone}' if fault.riders_gone else ''} | "
                f"{sum(fault.affected.values())}: {ends} |"
            )
        print()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.chaos", description=__doc__)
    parser.add_argument("--drivers", type=int, default=1000, help="simulated drivers (both cities)")
    parser.add_argument("--rate", type=float, default=120.0, help="rider requests per minute")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of the run")
    parser.add_argument("--speedup", type=float, default=4.0, help="the city's simulated speed")
    parser.add_argument(
        "--grace-s", type=float, default=25.0, help="COOP_DRIVER_GRACE_S of the workers"
    )
    parser.add_argument(
        "--pause-s", type=float, help="how long Redis is paused (default: grace + 5 s)"
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the data folder and logs")
    args = parser.parse_args(argv)
    if args.pause_s is None:
        args.pause_s = args.grace_s + 5.0
    if args.pause_s <= args.grace_s:
        parser.error("--pause-s must be longer than --grace-s")
    if args.duration < 30:
        parser.error("--duration must be at least 30 s")
    return args


class Stopped(KeyboardInterrupt):
    """The run was told to stop from outside (SIGTERM, SIGHUP, or its parent died): it stops as
    after a Ctrl-C, everything it started first. A KeyboardInterrupt, so that asyncio lets it
    through to the clean-up wherever it lands."""


def _stopped(signum: int, frame: object) -> None:
    raise Stopped(signal.Signals(signum).name)


def stop_when_told() -> None:
    """SIGTERM and SIGHUP stop the run as a Ctrl-C does, and so does its parent's death (the
    kernel sends SIGTERM then: a harness or terminal killed without stopping the run)."""
    parent = os.getppid()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stopped)
    signal_on_parent_death(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request was made
        raise Stopped("the parent process is gone")


def ignore_stops() -> None:
    """While the run stops what it started, further signals do not cut that short."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    from loadtests.procstats import raise_open_files_limit

    if raise_open_files_limit() < args.drivers * 2 + 500:
        log("the open-files limit is too low for that many sockets (ulimit -n)")
        return 2
    base = Path(tempfile.mkdtemp(prefix="coop-chaos-"))
    # Stops the private services and removes the folder should this process die outright.
    guard = keeper.start(base, keep=args.keep)
    ping_s = min(10.0, args.grace_s / 3)
    env = {
        **os.environ,
        "COOP_ENV": "dev",
        "COOP_DATA_DIR": str(base),
        "COOP_DATABASE_URL": localdev.pg_url(base),
        "COOP_REDIS_URL": localdev.redis_url(base),
        "COOP_ADMIN_TOKEN": ADMIN_TOKEN,
        "COOP_DRIVER_GRACE_S": str(args.grace_s),
        "COOP_WS_PING_INTERVAL_S": str(ping_s),
        "COOP_LOG_JSON": "false",
        "COOP_LOG_LEVEL": "WARNING",
        "COOP_BACKGROUND_TASKS": "true",
    }
    services = Services(base, env)
    started = time.monotonic()
    try:
        stop_when_told()
        log(f"private PostgreSQL and Redis in {base}")
        services.start_stores()
        env["COOP_DATABASE_URL"] = localdev.pg_url(base)
        services.start_workers(2)
        log(
            f"two workers on {', '.join(w.base_url for w in services.workers)}; "
            f"{args.drivers} drivers, {args.rate:g} requests/min for {args.duration:g} s"
        )
        load = os.getloadavg()
        code = asyncio.run(Chaos(args, services).run())
        log(
            f"done in {time.monotonic() - started:.0f} s; load average at the start "
            f"{load[0]:.1f}, at the end {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)"
        )
        return code
    except Stopped as stop:
        log(f"stopped from outside ({stop}): stopping what the run started")
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        log("interrupted: stopping what the run started")
        return 128 + signal.SIGINT
    finally:
        ignore_stops()
        services.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            log(f"kept {base}")
        keeper.release(guard)


if __name__ == "__main__":
    sys.exit(main())
