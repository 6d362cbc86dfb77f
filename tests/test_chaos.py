"""The chaos run at a small size: two real workers under a simulated city while a worker is
killed, Redis and PostgreSQL restart and Redis is paused past the grace period; every
invariant must hold afterwards (`loadtests/chaos.py`; the long run is in docs/reliability.md)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from devtools import localdev
from tests.polling import until_sync


# About a minute and a half on two idle cores; a busy machine stretches every wait in it.
@pytest.mark.timeout(480)
def test_a_small_chaos_run_breaks_no_invariant() -> None:
    command = [
        sys.executable,
        "-m",
        "loadtests.chaos",
        "--drivers",
        "24",
        "--rate",
        "40",
        "--speedup",
        "8",
        "--duration",
        "40",
        "--grace-s",
        "4",
        "--pause-s",
        "6",
    ]
    # Its own PostgreSQL and Redis, so the suite's are not restarted under the other tests.
    env = {key: value for key, value in os.environ.items() if not key.startswith("COOP_")}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=450)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "chaos run: every check holds" in output
    table = [line for line in output.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 4, output  # the header and one row per fault
    assert all(" never " not in row for row in table), output  # every fault recovered


# --- nothing outlives a run stopped from outside ------------------------------------------------


def _alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie waiting for its parent is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _children(pid: int) -> set[int]:
    """Every living descendant of `pid`, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return {child for child in found if _alive(child)}


class Lines:
    """A child's output, read by a thread, waited on with a bound."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no line matching {pattern!r} in:\n" + "\n".join(self.seen)
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found


@pytest.mark.timeout(300)
def test_a_chaos_run_stopped_with_sigterm_leaves_nothing_running() -> None:
    command = [sys.executable, "-m", "loadtests.chaos", "--drivers", "4", "--rate", "20"]
    command += ["--duration", "60", "--grace-s", "4", "--pause-s", "6"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("COOP_")}
    run = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output = Lines(run.stdout)  # type: ignore[arg-type]
        base = Path(output.wait_for(r"private PostgreSQL and Redis in (\S+)", 60)[1])
        output.wait_for(r"two workers on ", 240)
        output.wait_for(r"city \d: \[", 120)  # the city runs: the run is in its event loop
        redis = int((base / "redis" / "redis.pid").read_text())
        postgres = int(((base / "pg").resolve() / "postmaster.pid").read_text().split()[0])
        started = _children(run.pid) | {redis, postgres}
        # The two workers and the keeper are the run's children; the stores are daemons.
        assert len(started) >= 5 and all(_alive(pid) for pid in started), started

        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=120) == 128 + signal.SIGTERM, "\n".join(output.seen)
        output.wait_for(r"stopped from outside \(SIGTERM\)", 10)
        until_sync(
            lambda: not any(_alive(pid) for pid in started), timeout_s=60, what=f"{started} gone"
        )
        until_sync(lambda: not base.exists(), timeout_s=10, what=f"{base} removed")
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def test_the_keeper_stops_a_runs_redis_once_the_run_is_killed(short_tmp: Path) -> None:
    """A run killed outright (SIGKILL) cannot stop what it started: its keeper does."""
    base = short_tmp / "run"
    base.mkdir()
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from loadtests import keeper\n"
        "guard = keeper.start(Path(sys.argv[1]), keep=False)\n"
        "print(guard.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    run: subprocess.Popen[str] | None = None
    try:  # whatever fails, nothing this test started outlives it
        localdev.redis_up(base)
        redis = localdev.pid_alive(base / "redis" / "redis.pid")
        assert redis is not None
        os.kill(redis, signal.SIGSTOP)  # paused, as the chaos run's last fault leaves it a while
        run = subprocess.Popen(
            [sys.executable, "-c", script, str(base)], stdout=subprocess.PIPE, text=True
        )
        assert run.stdout is not None
        guard = int(run.stdout.readline())
        assert _alive(guard) and _alive(redis)
        run.kill()
        run.wait(timeout=10)
        until_sync(lambda: not _alive(redis), timeout_s=30, what="Redis stopped")
        until_sync(lambda: not _alive(guard), timeout_s=30, what="the keeper gone")
        assert not base.exists()
    finally:
        if run is not None and run.poll() is None:
            run.kill()
            run.wait()
        if (pid := localdev.pid_alive(base / "redis" / "redis.pid")) is not None:
            os.kill(pid, signal.SIGCONT)
            localdev.redis_down(base)


def test_a_chaos_run_whose_parent_dies_is_told_to_stop(short_tmp: Path) -> None:
    """The run asks for SIGTERM at its parent's death and takes it as a stop (the path of the
    SIGTERM test above)."""
    marker = short_tmp / "stopped"
    child = (
        "import sys, time\n"
        "from loadtests.chaos import Stopped, stop_when_told\n"
        "stop_when_told()\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    time.sleep(60)\n"
        "except Stopped as stop:\n"
        "    open(sys.argv[1], 'w').write(str(stop))\n"
    )
    parent = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', sys.argv[1], sys.argv[2]])\n"
        "print(child.pid, flush=True)\n"
        "child.wait()\n"
    )
    run = subprocess.Popen(
        [sys.executable, "-c", parent, child, str(marker)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert run.stdout is not None
        pid = int(run.stdout.readline())
        assert run.stdout.readline().strip() == "ready"
        run.kill()
        run.wait(timeout=10)
        until_sync(
            lambda: marker.exists() and marker.read_text() == "SIGTERM",
            timeout_s=20,
            what="stopped",
        )
        until_sync(lambda: not _alive(pid), timeout_s=20, what="the run gone")
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
