"""The chaos run at a small size: two real workers under a simulated city while a worker is
killed, Redis and PostgreSQL restart and Redis is paused past the grace period; every
invariant must hold afterwards (`loadtests/chaos.py`; the long run is in docs/reliability.md)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


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
