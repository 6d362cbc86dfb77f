"""The benchmarks' shared pieces: one server-process class (with the parent-death signal), the
metrics reader, and the process statistics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from devtools.processes import ServiceError, ServiceProcess, free_port
from loadtests.metrics import histogram_delta, histogram_quantile, parse, service_pauses, value
from loadtests.procstats import children_of, cpu_s, rss_kib
from tests.polling import until_sync

# A child that says it is ready, sleeps until SIGINT, then writes a file saying so and exits 0.
SLEEPER = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    def stop(signum, frame):
        Path(sys.argv[1]).write_text("stopped by SIGINT")
        sys.exit(0)
    signal.signal(signal.SIGINT, stop)
    Path(sys.argv[1] + ".ready").touch()
    while True:
        time.sleep(0.05)
    """
)


def test_a_killed_parent_takes_its_server_with_it(tmp_path: Path) -> None:
    """The parent starts a server child and is then killed with SIGKILL (no `finally` runs):
    the child gets SIGINT from the kernel and stops, so nothing outlives a killed `make demo`."""
    marker = tmp_path / "stopped"
    pid_file = tmp_path / "child.pid"
    parent_code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from devtools.processes import ServiceProcess, free_port
        service = ServiceProcess(
            host="127.0.0.1", port=free_port(), log_path=Path({str(tmp_path / "child.log")!r}),
            argv=[sys.executable, "-c", {SLEEPER!r}, {str(marker)!r}],
        )
        service.start()
        Path({str(pid_file)!r}).write_text(str(service.pid))
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    try:
        until_sync(pid_file.exists)
        until_sync(Path(f"{marker}.ready").exists)
        child_pid = int(pid_file.read_text())
        assert psutil.pid_exists(child_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        until_sync(lambda: marker.exists() and marker.read_text() == "stopped by SIGINT")
        until_sync(lambda: not psutil.pid_exists(child_pid) or _is_zombie(child_pid))
    finally:
        if parent.poll() is None:
            parent.kill()


def _is_zombie(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def test_stop_sends_sigint_first_and_answers_the_exit_code(tmp_path: Path) -> None:
    marker = tmp_path / "stopped"
    service = ServiceProcess(
        host="127.0.0.1",
        port=free_port(),
        log_path=tmp_path / "child.log",
        argv=[sys.executable, "-c", SLEEPER, str(marker)],
    )
    with service:
        assert psutil.pid_exists(service.pid)
        until_sync(Path(f"{marker}.ready").exists)
    assert marker.read_text() == "stopped by SIGINT"
    assert service.process is None
    assert service.stop() is None  # stopping twice is harmless


def test_a_port_in_use_is_refused_by_name(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = ServiceProcess(host="127.0.0.1", port=port, log_path=tmp_path / "x.log")
        with pytest.raises(ServiceError, match=f"127.0.0.1:{port} is already in use"):
            service.start()


def test_a_child_that_exits_fails_the_wait_at_once_with_its_log(tmp_path: Path) -> None:
    service = ServiceProcess(
        host="127.0.0.1",
        port=free_port(),
        log_path=tmp_path / "child.log",
        argv=[sys.executable, "-c", "print('no database here'); raise SystemExit(3)"],
    )
    started = time.monotonic()
    with service, pytest.raises(ServiceError, match="exited with code 3") as refused:
        service.wait_ready(timeout_s=30)
    assert "no database here" in str(refused.value)
    assert time.monotonic() - started < 20


def _exposition(observations: list[float], requests: int) -> str:
    registry = CollectorRegistry()
    pauses = Histogram(
        "coop_gc_pause_seconds",
        "GC pauses",
        ["generation"],
        buckets=(0.001, 0.01, 0.1, 1.0),
        registry=registry,
    )
    counter = Counter("coop_location_reports", "reports", registry=registry)
    for seconds in observations:
        pauses.labels(generation="2").observe(seconds)
    counter.inc(requests)
    return generate_latest(registry).decode()


def test_histograms_are_read_between_two_scrapes() -> None:
    before = parse(_exposition([0.005], 10))
    after = parse(_exposition([0.005, 0.05, 0.05, 0.5], 25))
    count, total, buckets = histogram_delta(
        before, after, "coop_gc_pause_seconds", {"generation": "2"}
    )
    assert count == 3
    assert total == pytest.approx(0.6)
    assert buckets == [(0.001, 0), (0.01, 0), (0.1, 2), (1.0, 3), (float("inf"), 3)]
    assert histogram_quantile(buckets, 0.5) == 0.1
    assert value(after, "coop_location_reports_total") == 25
    assert value(after, "coop_missing_total") == 0
    assert "GC gen 2: 3 runs, total 600 ms, longest <= 1000 ms" in service_pauses(before, after)


def test_process_statistics_of_a_real_process() -> None:
    busy_then_idle = "import time; sum(range(10**7)); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", busy_then_idle])
    try:
        until_sync(lambda: cpu_s(child.pid) > 0.05)
        assert child.pid in children_of(os.getpid())
        assert rss_kib(child.pid) > 1000
    finally:
        child.kill()
        child.wait()
    assert cpu_s(child.pid) == 0.0  # gone
