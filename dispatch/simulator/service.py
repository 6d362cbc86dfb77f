"""The service as a child process, for `demo` and the load test: start, wait until ready, stop.

The child runs `python -m dispatch serve` in its own session, so the terminal's Ctrl-C reaches
only the parent, which stops the simulator first and the service after it, in that order.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

STOP_GRACE_S = 15.0


class ServiceError(RuntimeError):
    """The service could not be started or did not become ready; the message says why."""


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ServiceProcess:
    """`python -m dispatch serve` on host:port, its output in a log file."""

    def __init__(self, *, host: str, port: int, log_path: Path, env: dict[str, str] | None = None):
        self.host = host
        self.port = port
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        if not port_is_free(self.host, self.port):
            raise ServiceError(
                f"{self.host}:{self.port} is already in use; stop what runs there or choose "
                "another port (COOP_PORT or --port)"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dispatch",
                "serve",
                "--host",
                self.host,
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Polls /readyz until it answers 200; fails early if the child exits."""
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        with httpx.Client(base_url=self.base_url, timeout=2.0) as http:
            while time.monotonic() < deadline:
                code = self.process.poll()
                if code is not None:
                    raise ServiceError(
                        f"the service exited with code {code}; the end of {self.log_path}:\n"
                        f"{tail(self.log_path)}"
                    )
                try:
                    response = http.get("/readyz")
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text}"
                except httpx.HTTPError as exc:
                    last = str(exc) or type(exc).__name__
                time.sleep(0.2)
        raise ServiceError(f"the service was not ready within {timeout_s:g} s ({last})")

    def stop(self) -> int | None:
        """SIGINT (uvicorn's graceful stop), then SIGTERM, then SIGKILL; answers the exit code."""
        process = self.process
        if process is None:
            return None
        try:
            for signum, wait_s in (
                (signal.SIGINT, STOP_GRACE_S),
                (signal.SIGTERM, 5.0),
                (signal.SIGKILL, 5.0),
            ):
                if process.poll() is not None:
                    break
                process.send_signal(signum)
                try:
                    process.wait(timeout=wait_s)
                except subprocess.TimeoutExpired:
                    continue
            return process.poll()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
            self.process = None

    def __enter__(self) -> ServiceProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
