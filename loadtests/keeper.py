"""The keeper of a run's private PostgreSQL and Redis: it stops them once the run is gone,
however the run ended.

    python -m loadtests.keeper FOLDER [--keep]      # started by the run, never by hand

PostgreSQL and Redis run as daemons: they outlive the process that started them, so a run
killed outright (SIGKILL, an out-of-memory kill) would leave them running, and a run that cleans
up after itself on SIGTERM or SIGINT cannot do so then. The run starts this small process first,
in a session of its own (a Ctrl-C at the terminal does not reach it), holding the write end of
a pipe on its standard input. When the run exits for any reason the kernel closes that pipe;
the keeper then stops whatever is still running in the run's folder (Redis, resumed first if
it was paused; PostgreSQL) and removes the folder unless told to keep it. A run that stopped
its services itself leaves the keeper nothing to do.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

from devtools import localdev


def stop_stores(base: Path) -> None:
    """Stops the Redis and PostgreSQL whose data lives in `base` (resuming a paused Redis
    first), and removes a cluster that lives outside `base` (as root, under /var/tmp)."""
    if not base.is_dir():
        return
    pidfile = base / "redis" / "redis.pid"
    if (pid := localdev.pid_alive(pidfile)) is not None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGCONT)
        localdev.redis_down(base)
    link = base / "pg"
    cluster = link.resolve() if link.exists() else None
    localdev.pg_down(base)
    if cluster is not None and cluster != link:
        shutil.rmtree(cluster, ignore_errors=True)


def start(base: Path, *, keep: bool) -> subprocess.Popen[bytes]:
    """Starts the keeper of `base`; it acts once this process (and so the pipe) is gone. Close
    its stdin and wait for it to let it go after a clean stop."""
    argv = [sys.executable, "-m", "loadtests.keeper", str(base)]
    if keep:
        argv.append("--keep")
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
    )


def release(keeper: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    """After the run stopped its services itself: close the pipe and wait for the keeper."""
    stdin: IO[bytes] | None = keeper.stdin
    if stdin is not None:
        with contextlib.suppress(OSError):
            stdin.close()
    try:
        keeper.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        keeper.kill()
        keeper.wait()


class _StopNow(Exception):
    pass


def _stop_now(signum: int, frame: object) -> None:
    raise _StopNow()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.keeper", description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs)")
    args = parser.parse_args(argv)
    # A Ctrl-C or a hang-up meant for the run is not for the keeper: the pipe ends its wait.
    # A SIGTERM sent to the keeper itself means: stop the services now.
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_now)
    try:
        # Blocks until the run has exited (or closed the pipe after a clean stop).
        while sys.stdin.buffer.read(4096):
            pass
    except _StopNow:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the stop itself is not interrupted
    stop_stores(args.folder)
    if not args.keep:
        shutil.rmtree(args.folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
