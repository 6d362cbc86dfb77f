"""CPU and memory of processes (the service, PostgreSQL, Redis, the generator), through psutil."""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Callable
from pathlib import Path

import psutil


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
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def rss_kib(pid: int) -> int:
    """Resident set size of a process, KiB."""
    return int(psutil.Process(pid).memory_info().rss // 1024)


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_of(pid: int) -> list[int]:
    """Direct children of a process (PostgreSQL's backends are the postmaster's)."""
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def redis_pid(data_dir: Path) -> int | None:
    for name in ("redis.pid", "redis-server.pid"):
        with contextlib.suppress(OSError, ValueError):
            return int((data_dir / "redis" / name).read_text().strip())
    # Fall back to the process whose command line names our socket path.
    sock = str(data_dir / "redis" / "redis.sock")
    for process in psutil.process_iter(["cmdline"]):
        if any(sock in part for part in process.info["cmdline"] or ()):
            return int(process.pid)
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
