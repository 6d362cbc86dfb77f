"""What the realtime benchmarks share: a bench database, service processes, process statistics,
accounts written straight into the database, and a light WebSocket client for thousands of
sockets in one process.

The client is a plain `asyncio.Protocol` speaking RFC 6455 itself (no task, no queue, no thread
per socket): it masks what it sends, answers the server's protocol pings, and hands each text
frame to a callback. That keeps a generator of 10,000 sockets on a 2-core machine light enough
to leave the cores to the service it measures; every benchmark reports the CPU it took.

    python -m loadtests._harness baseline-server --port 8765    # the transport-only baseline
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import hashlib
import json
import os
import platform
import random
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import insert
from sqlalchemy.engine import URL, make_url

from dispatch.core.auth import AuthToken, Role, hash_token, new_token
from dispatch.core.db import create_engine
from dispatch.core.geo import ServiceArea
from dispatch.core.riders.models import Rider
from dispatch.core.settings import Settings, get_settings
from dispatch.simulator.movement import Point, random_point_in
from drivers.models import Driver, DriverStatus, DriverVehicle

BENCH_REDIS_DB = 3
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STOP_GRACE_S = 20.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- numbers ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine_line() -> str:
    """Cores, CPU model, memory, Python and load average: the facts a figure needs beside it."""
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"nproc {os.cpu_count()}, {model}, {memory_gib:.0f} GiB, Linux {platform.release()}, "
        f"Python {platform.python_version()}, load average {load}"
    )


# --- processes ----------------------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def raise_open_files_limit() -> int:
    """Raises this process's RLIMIT_NOFILE to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pids(*numbers: int) -> Callable[[], list[int]]:
    """A fixed group of processes for `CpuMeter`."""
    return lambda: list(numbers)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """Resident set size of a process, KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_of(pid: int) -> list[int]:
    """Direct children of a process (PostgreSQL's backends are the postmaster's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def redis_pid(data_dir: Path) -> int | None:
    for name in ("redis.pid", "redis-server.pid"):
        with contextlib.suppress(OSError, ValueError):
            return int((data_dir / "redis" / name).read_text().strip())
    # Fall back to the process listening on our socket path.
    sock = str(data_dir / "redis" / "redis.sock")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if sock in (entry / "cmdline").read_text():
                    return int(entry.name)
    return None


class CpuMeter:
    """CPU seconds used by groups of processes between `start()` and `read()`.

    PostgreSQL counts the postmaster and every backend alive at both ends (the service's pooled
    connections live through a run; a backend that ends in between is not counted)."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self._start: dict[str, dict[int, float]] = {}
        self._started_at = 0.0

    def _sample(self) -> dict[str, dict[int, float]]:
        return {name: {pid: cpu_s(pid) for pid in pids()} for name, pids in self.groups.items()}

    def start(self) -> None:
        self._start = self._sample()
        self._started_at = time.monotonic()

    def read(self) -> tuple[float, dict[str, float]]:
        """(wall seconds, CPU seconds by group) since `start()`."""
        now = self._sample()
        used = {}
        for name, pids in now.items():
            before = self._start.get(name, {})
            used[name] = sum(cpu - before.get(pid, 0.0) for pid, cpu in pids.items())
        return time.monotonic() - self._started_at, used


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _stop_with_parent() -> None:
    """In the child before exec: Linux sends it SIGINT (uvicorn's graceful stop) if the bench
    dies without stopping it, so no service outlives a killed benchmark."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGINT)


def run_bench(main: Coroutine[Any, Any, int]) -> int:
    """Runs a benchmark's main coroutine on uvloop when installed; SIGTERM ends it like Ctrl-C,
    so its `finally` blocks stop what it started."""

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        import uvloop

        return uvloop.run(main)
    except ImportError:
        return asyncio.run(main)
    except KeyboardInterrupt:
        log("interrupted; everything it started is stopped")
        return 130


class Process:
    """A child process on 127.0.0.1:port (the service or the baseline server), logged to a file,
    in its own session so only we stop it; `stop()` is SIGINT, then SIGTERM, then SIGKILL."""

    def __init__(self, argv: list[str], *, port: int, env: dict[str, str], log_path: Path):
        self.argv = argv
        self.port = port
        self.env = env
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_stop_with_parent,
        )

    async def wait_ready(self, path: str = "/readyz", timeout_s: float = 60.0) -> None:
        assert self.popen is not None
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.popen.poll() is not None:
                    tail = self.log_path.read_text(errors="replace").splitlines()[-20:]
                    raise RuntimeError(
                        f"{self.argv} exited with {self.popen.returncode}:\n" + "\n".join(tail)
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(path)).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.argv} not ready within {timeout_s} s")

    def stop(self) -> int | None:
        popen, self.popen = self.popen, None
        if popen is not None:
            for signum, wait_s in (
                (signal.SIGINT, STOP_GRACE_S),
                (signal.SIGTERM, 5.0),
                (signal.SIGKILL, 5.0),
            ):
                if popen.poll() is not None:
                    break
                popen.send_signal(signum)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    popen.wait(timeout=wait_s)
        if self._log is not None:
            self._log.close()
            self._log = None
        return None if popen is None else popen.poll()


# --- the bench database -------------------------------------------------------------------------


def asyncpg_kwargs(url: URL) -> dict[str, Any]:
    """asyncpg connection arguments for a SQLAlchemy URL (a Unix socket given as ?host=)."""
    kwargs: dict[str, Any] = {
        "user": url.username,
        "password": url.password,
        "host": url.query.get("host") or url.host,
        "port": url.port,
        "database": url.database,
    }
    return {key: value for key, value in kwargs.items() if value is not None}


def with_redis_db(redis_url: str, db: int) -> str:
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("db="))
        return urlunsplit(parts._replace(query="&".join(filter(None, [query, f"db={db}"]))))
    return urlunsplit(parts._replace(path=f"/{db}"))


@dataclass
class BenchEnv:
    """The private PostgreSQL and Redis of COOP_DATA_DIR, with a database and a Redis database
    number of the benchmarks' own (`<db>_bench`, created anew for each run, and Redis db 3), so
    a run never touches the data of `make demo` or the tests."""

    settings: Settings
    database_url: str
    redis_url: str
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @classmethod
    async def create(cls) -> BenchEnv:
        import asyncpg

        from dispatch.migrate import upgrade

        settings = get_settings()
        main_url = make_url(settings.database_url)
        bench_url = main_url.set(database=f"{main_url.database}_bench")
        admin = await asyncpg.connect(**asyncpg_kwargs(main_url.set(database="postgres")))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{bench_url.database}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{bench_url.database}"')
        finally:
            await admin.close()
        database_url = bench_url.render_as_string(hide_password=False)
        await asyncio.to_thread(upgrade, database_url)
        redis_url = with_redis_db(settings.redis_url, BENCH_REDIS_DB)
        from dispatch.core.redis_client import create_redis

        redis = create_redis(redis_url)
        try:
            await redis.flushdb()
        finally:
            await redis.aclose()
        return cls(settings=settings, database_url=database_url, redis_url=redis_url)

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def service_env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
        env.update(
            COOP_ENV="dev",
            COOP_DATA_DIR=str(self.data_dir),
            COOP_DATABASE_URL=self.database_url,
            COOP_REDIS_URL=self.redis_url,
            COOP_ADMIN_TOKEN=self.admin_token,
            COOP_LOG_LEVEL="WARNING",
            COOP_LOG_JSON="false",
        )
        env.update(overrides)
        return env

    def service(self, name: str, **overrides: str) -> Process:
        port = free_port()
        return Process(
            [sys.executable, "-m", "dispatch", "serve", "--host", "127.0.0.1", "--port", str(port)],
            port=port,
            env=self.service_env(**overrides),
            log_path=self.data_dir / "bench" / f"{name}.log",
        )

    def baseline_server(self, name: str = "baseline") -> Process:
        port = free_port()
        return Process(
            [sys.executable, "-m", "loadtests._harness", "baseline-server", "--port", str(port)],
            port=port,
            env=self.service_env(),
            log_path=self.data_dir / "bench" / f"{name}.log",
        )

    def cpu_groups(self) -> dict[str, Callable[[], list[int]]]:
        postmaster = postmaster_pid(self.data_dir)
        redis = redis_pid(self.data_dir)
        groups: dict[str, Callable[[], list[int]]] = {"generator": lambda: [os.getpid()]}
        if postmaster is not None:
            groups["postgres"] = lambda: [postmaster, *children_of(postmaster)]
        if redis is not None:
            groups["redis"] = lambda: [redis]
        return groups

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        import asyncpg

        connection = await asyncpg.connect(**asyncpg_kwargs(make_url(self.database_url)))
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()


@dataclass(frozen=True)
class Member:
    id: uuid.UUID
    token: str


async def insert_accounts(
    env: BenchEnv, *, drivers: int, riders: int = 0, batch: int = 2000
) -> tuple[list[Member], list[Member]]:
    """Drivers (with vehicles) and riders with their tokens, written straight into the bench
    database: registering 10,000 over HTTP would measure the sign-up path, not the realtime one.
    The rows are those the API writes (the same models, defaults and token hashes)."""
    engine = create_engine(env.database_url, pool_size=1, max_overflow=0)
    run = secrets.token_hex(3)
    now = datetime.now(UTC)
    driver_members = [Member(uuid.uuid4(), new_token()) for _ in range(drivers)]
    rider_members = [Member(uuid.uuid4(), new_token()) for _ in range(riders)]
    try:
        async with engine.begin() as connection:
            for start in range(0, drivers, batch):
                chunk = driver_members[start : start + batch]
                await connection.execute(
                    insert(Driver),
                    [
                        {
                            "id": m.id,
                            "name": f"Bench driver {start + i}",
                            "member_number": f"B-{run}-{start + i}",
                            "status": DriverStatus.active,
                            "committee": False,
                            "reviewer": False,
                            "created_at": now,
                        }
                        for i, m in enumerate(chunk)
                    ],
                )
                await connection.execute(
                    insert(DriverVehicle),
                    [
                        {
                            "driver_id": m.id,
                            "plate": f"B{start + i:06d}",
                            "seats": 4,
                            "wheelchair_accessible": False,
                        }
                        for i, m in enumerate(chunk)
                    ],
                )
            for start in range(0, riders, batch):
                chunk = rider_members[start : start + batch]
                await connection.execute(
                    insert(Rider),
                    [
                        {"id": m.id, "name": f"Bench rider {start + i}", "created_at": now}
                        for i, m in enumerate(chunk)
                    ],
                )
            tokens = [(m, Role.driver) for m in driver_members] + [
                (m, Role.rider) for m in rider_members
            ]
            for start in range(0, len(tokens), batch):
                await connection.execute(
                    insert(AuthToken),
                    [
                        {
                            "token_hash": hash_token(m.token),
                            "role": role,
                            "subject_id": m.id,
                            "created_at": now,
                        }
                        for m, role in tokens[start : start + batch]
                    ],
                )
    finally:
        await engine.dispose()
    return driver_members, rider_members


def positions_in_area(count: int, seed: int) -> list[Point]:
    area = ServiceArea.from_file(get_settings().service_area)
    rng = random.Random(seed)
    return [random_point_in(rng, area) for _ in range(count)]


# --- the light WebSocket client -----------------------------------------------------------------

FrameHandler = Callable[["WsClient", float, str], None]


class WsClient(asyncio.Protocol):
    """One client WebSocket (RFC 6455) as a bare protocol object: a handshake, masked text frames
    out, text frames in to `on_text(client, received_at, text)`, protocol pings answered.

    `waiter`, when set, is resolved by the handler (or by the handshake's end, or the close) so
    the bench can await one thing per socket without a task per socket."""

    __slots__ = (
        "index",
        "on_text",
        "transport",
        "buffer",
        "handshake_done",
        "request",
        "expected_accept",
        "waiter",
        "closed",
        "close_code",
        "fragments",
        "state",
    )

    def __init__(self, index: int, request: bytes, expected_accept: bytes, on_text: FrameHandler):
        self.index = index
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.handshake_done = False
        self.request = request
        self.expected_accept = expected_accept
        self.waiter: asyncio.Future[Any] | None = None
        self.closed = False
        self.close_code: int | None = None
        self.fragments: list[bytes] | None = None
        self.state: Any = None  # whatever the bench keeps per socket

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)
        self.request = b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._resolve(ConnectionError(f"socket {self.index} closed ({self.close_code})"))

    def _resolve(self, value: Any) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            if isinstance(value, BaseException):
                waiter.set_exception(value)
            else:
                waiter.set_result(value)

    def resolve(self, value: Any) -> None:
        self._resolve(value)

    def data_received(self, data: bytes) -> None:
        received_at = time.time()
        self.buffer += data
        if not self.handshake_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            del self.buffer[: end + 4]
            if not head.startswith("HTTP/1.1 101") or self.expected_accept not in head.encode():
                status = head.split("\r\n", 1)[0]
                self.close_code = -1
                self._resolve(ConnectionError(f"handshake refused: {status}"))
                assert self.transport is not None
                self.transport.close()
                return
            self.handshake_done = True
        self._frames(received_at)

    def _frames(self, received_at: float) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            length, start = second & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            opcode, final = first & 0x0F, bool(first & 0x80)
            if opcode == 0x9:  # ping: answer it, as every client must
                self._send(0xA, payload)
            elif opcode == 0x8:  # close: echo the code and let the server close the TCP side
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                if not self.closed:
                    self._send(0x8, payload[:2])
                    self.closed = True
            elif opcode == 0x1 and final:
                self.on_text(self, received_at, payload.decode())
            elif opcode in (0x1, 0x0):  # fragmented text
                self.fragments = [*(self.fragments or []), payload]
                if final:
                    text = b"".join(self.fragments).decode()
                    self.fragments = None
                    self.on_text(self, received_at, text)

    def _send(self, opcode: int, payload: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        length = len(payload)
        if length < 126:
            header = bytes((0x80 | opcode, 0x80 | length))
        elif length < 65536:
            header = bytes((0x80 | opcode, 0xFE)) + length.to_bytes(2, "big")
        else:
            header = bytes((0x80 | opcode, 0xFF)) + length.to_bytes(8, "big")
        mask = random.getrandbits(32).to_bytes(4, "big")
        if length:
            key = int.from_bytes((mask * (length // 4 + 1))[:length], "big")
            payload = (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big")
        transport.write(header + mask + payload)

    def send_text(self, text: str) -> None:
        self._send(0x1, text.encode())

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if not self.closed:
                self._send(0x8, (1000).to_bytes(2, "big"))
            self.transport.close()

    @property
    def open(self) -> bool:
        return self.handshake_done and not self.closed


def handshake(host: str, port: int, path: str, token: str | None) -> tuple[bytes, bytes]:
    """The upgrade request and the Sec-WebSocket-Accept the server must answer with."""
    key = base64.b64encode(secrets.token_bytes(16))
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), accept


def frame_type(text: str) -> str:
    """The `type` of a server frame; every frame the service sends begins with it."""
    if text.startswith('{"type":"'):
        return text[9 : text.index('"', 9)]
    value = json.loads(text)
    return str(value.get("type")) if isinstance(value, dict) else ""


async def open_sockets(
    base_url: str,
    path: str,
    tokens: Sequence[str | None],
    on_text: FrameHandler,
    *,
    concurrency: int = 100,
    ready: str = "hello",
    timeout_s: float = 30.0,
    progress_every: int = 2000,
) -> tuple[list[WsClient], list[str]]:
    """Opens one socket per token, at most `concurrency` handshakes at a time, each done when
    its first `ready` frame arrived (the service's hello: authenticated, subscribed, and its
    state sent). Answers (open clients, errors)."""
    loop = asyncio.get_running_loop()
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    clients: list[WsClient | None] = [None] * len(tokens)
    errors: list[str] = []
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(index: int, token: str | None) -> None:
        nonlocal done
        async with gate:
            request, accept = handshake(host, port, path, token)
            client = WsClient(index, request, accept, on_text)
            client.waiter = loop.create_future()
            waiter = client.waiter
            try:
                await asyncio.wait_for(
                    loop.create_connection(lambda: client, host, port), timeout_s
                )
                await asyncio.wait_for(waiter, timeout_s)
            except (OSError, TimeoutError, ConnectionError) as exc:
                errors.append(f"socket {index}: {type(exc).__name__}: {exc}")
                client.close()
                return
            clients[index] = client
            done += 1
            if progress_every and done % progress_every == 0:
                log(f"{done} sockets open")

    await asyncio.gather(*(one(i, token) for i, token in enumerate(tokens)))
    return [c for c in clients if c is not None], errors


def ready_on(kind: str, inner: FrameHandler | None = None) -> FrameHandler:
    """A frame handler that resolves a socket's waiter on its first frame of `kind` (e.g. the
    hello), then passes every frame on to `inner`."""

    def handle(client: WsClient, received_at: float, text: str) -> None:
        if client.waiter is not None and frame_type(text) == kind:
            client.resolve(received_at)
        if inner is not None:
            inner(client, received_at, text)

    return handle


async def await_all(
    clients: Iterable[WsClient],
    send: Callable[[WsClient], None],
    *,
    timeout_s: float,
    spread_s: float = 0.0,
) -> tuple[list[float], int]:
    """Arms every client's waiter, calls `send` on each (spread over `spread_s`), and waits for
    the answers. Answers (round trips in seconds, how many did not answer in time)."""
    loop = asyncio.get_running_loop()
    items = list(clients)
    started: list[float] = [0.0] * len(items)
    futures: list[asyncio.Future[Any]] = []
    step = spread_s / len(items) if items and spread_s else 0.0
    for i, client in enumerate(items):
        client.waiter = loop.create_future()
        futures.append(client.waiter)
        started[i] = time.time()
        send(client)
        if step and i % 100 == 99:
            await asyncio.sleep(step * 100)
    results = await asyncio.gather(
        *(asyncio.wait_for(f, timeout_s) for f in futures), return_exceptions=True
    )
    round_trips = [
        float(r) - started[i] for i, r in enumerate(results) if not isinstance(r, BaseException)
    ]
    return round_trips, len(items) - len(round_trips)


# --- pauses in this process ---------------------------------------------------------------------


class GcWatch:
    """Durations of the cyclic garbage collector's runs in this process, by generation."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._started)

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)

    def reset(self) -> None:
        for pauses in self.pauses.values():
            pauses.clear()

    def summary(self) -> str:
        everything = [p for pauses in self.pauses.values() for p in pauses]
        counts = "/".join(str(len(self.pauses[g])) for g in (0, 1, 2))
        if not everything:
            return "no collections"
        return (
            f"{counts} collections (gen 0/1/2), longest {max(everything) * 1000:.1f} ms, "
            f"total {sum(everything) * 1000:.0f} ms"
        )


def freeze_generator() -> None:
    """The generator's own collector tuning, once its sockets are open: everything alive now
    (10,000 clients and their state) lives to the end, so `gc.freeze()` takes it out of every
    later collection; a full collection otherwise walks it all and stalls the sockets' timing
    by 100 ms or more."""
    gc.collect()
    gc.freeze()


class LoopLag:
    """Event-loop lag: a task that sleeps `interval_s` and records how late it woke up."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _probe(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            self.lags.append(max(0.0, time.perf_counter() - before - self.interval_s))

    def start(self) -> None:
        self._task = asyncio.create_task(self._probe())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def summary(self) -> str:
        if not self.lags:
            return "no samples"
        return (
            f"p50 {percentile(self.lags, 50) * 1000:.1f} ms, "
            f"p99 {percentile(self.lags, 99) * 1000:.1f} ms, max {max(self.lags) * 1000:.0f} ms"
        )


# --- the service's own pause statistics (COOP_GC_STATS) -----------------------------------------


async def scrape(base_url: str) -> dict[str, float]:
    """The service's Prometheus samples, by name with labels (`name{a="b"}`)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
        response = await http.get("/metrics")
    response.raise_for_status()
    samples: dict[str, float] = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                samples[name] = float(value)
    return samples


def histogram_delta(
    before: dict[str, float], after: dict[str, float], name: str, labels: str = ""
) -> tuple[int, float, list[tuple[float, int]]]:
    """(count, sum, [(upper bound, cumulative count)]) of a histogram between two scrapes."""

    def value(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    suffix = f"{{{labels}}}" if labels else ""
    count = int(value(f"{name}_count{suffix}"))
    total = value(f"{name}_sum{suffix}")
    buckets = []
    prefix = f"{name}_bucket{{" + (f"{labels}," if labels else "")
    for key in after:
        if key.startswith(prefix) and 'le="' in key:
            bound = key.split('le="', 1)[1].split('"', 1)[0]
            upper = float("inf") if bound == "+Inf" else float(bound)
            buckets.append((upper, int(value(key))))
    return count, total, sorted(buckets)


def histogram_quantile(buckets: list[tuple[float, int]], q: float) -> float:
    """The upper bound of the bucket holding the q-th quantile (q in 0..1)."""
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    wanted = q * buckets[-1][1]
    for upper, cumulative in buckets:
        if cumulative >= wanted:
            return upper
    return float("inf")


def longest_bucket(buckets: list[tuple[float, int]]) -> float:
    """The upper bound of the highest bucket that gained a count (the longest, to a bucket)."""
    longest, previous = 0.0, 0
    for upper, cumulative in buckets:
        if cumulative > previous:
            longest = upper
        previous = cumulative
    return longest


def service_pauses(before: dict[str, float], after: dict[str, float]) -> str:
    """One line on the service's GC pauses and event-loop lag between two scrapes (durations
    to the histogram's bucket: "<= 50 ms")."""
    parts = []
    for generation in (0, 1, 2):
        count, total, buckets = histogram_delta(
            before, after, "coop_gc_pause_seconds", f'generation="{generation}"'
        )
        if count:
            parts.append(
                f"GC gen {generation}: {count} runs, total {total * 1000:.0f} ms, "
                f"longest <= {longest_bucket(buckets) * 1000:g} ms"
            )
    if not parts and "coop_event_loop_lag_seconds_count" in after:
        parts.append("no GC run")
    count, total, buckets = histogram_delta(before, after, "coop_event_loop_lag_seconds")
    if count:
        parts.append(
            f"loop lag p50 <= {histogram_quantile(buckets, 0.5) * 1000:g} ms, "
            f"p99 <= {histogram_quantile(buckets, 0.99) * 1000:g} ms, "
            f"max <= {longest_bucket(buckets) * 1000:g} ms"
        )
    return "; ".join(parts) if parts else "no statistics (COOP_GC_STATS off?)"


# --- the transport-only baseline server ---------------------------------------------------------


def baseline_app() -> Callable[..., Awaitable[None]]:
    """A bare ASGI app: every WebSocket is accepted at once, greeted with a hello, and each
    text frame is counted (a `ping` frame answered with a `pong`); GET /count answers the
    number of frames, GET /readyz 200. What the transport alone costs, for comparison."""
    frames = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal frames
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "http":
            body = json.dumps({"frames": frames}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": '{"type":"hello"}'})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            frames += 1
            text = message.get("text") or ""
            if text.startswith('{"type":"ping"'):
                await send({"type": "websocket.send", "text": '{"type":"pong"}'})

    return app


def _baseline_server(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run(
        baseline_app(),
        host="127.0.0.1",
        port=args.port,
        ws_per_message_deflate=False,
        log_level="warning",
        lifespan="on",
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests._harness")
    commands = parser.add_subparsers(dest="command", required=True)
    baseline = commands.add_parser("baseline-server", help="the transport-only baseline server")
    baseline.add_argument("--port", type=int, required=True)
    baseline.set_defaults(handler=_baseline_server)
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
