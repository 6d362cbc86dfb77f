"""A server as a child process, for `demo`, the load test and the benchmarks: start, wait until
ready, stop.

The child runs in its own session, so the terminal's Ctrl-C reaches only the parent, which stops
what it drives first and the server after it, in that order. If the parent dies without stopping
it (killed outright), Linux sends the child SIGINT (`PR_SET_PDEATHSIG`), so no server outlives the
command that started it.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import httpx

STOP_GRACE_S = 15.0
_PR_SET_PDEATHSIG = 1


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


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def signal_on_parent_death(signum: int) -> bool:
    """Asks Linux to send this process `signum` when its parent dies (`PR_SET_PDEATHSIG`);
    False where that cannot be asked. The request is kept across exec but not by children."""
    try:
        return int(ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)) == 0
    except (OSError, AttributeError):
        return False


def _stop_with_parent() -> None:
    """In the child, before exec: SIGINT (uvicorn's graceful stop) when the parent dies."""
    signal_on_parent_death(signal.SIGINT)


def serve_argv(host: str, port: int) -> list[str]:
    """`python -m server serve` on host:port, as `make serve` runs it."""
    return [sys.executable, "-m", "server", "serve", "--host", host, "--port", str(port)]


class ServiceProcess:
    """A server on host:port as a child process (by default `python -m server serve`), its
    output in a log file; `stop()` is SIGINT, then SIGTERM, then SIGKILL."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        log_path: Path,
        env: dict[str, str] | None = None,
        argv: Sequence[str] | None = None,
        stop_grace_s: float = STOP_GRACE_S,
    ):
        self.host = host
        self.port = port
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self.argv = list(argv) if argv is not None else serve_argv(host, port)
        self.stop_grace_s = stop_grace_s
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "start() first"
        return self.process.pid

    def start(self) -> None:
        if not port_is_free(self.host, self.port):
            raise ServiceError(
                f"{self.host}:{self.port} is already in use; stop what runs there or choose "
                "another port (COOP_PORT or --port)"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_stop_with_parent,
        )

    def _exited(self) -> ServiceError | None:
        assert self.process is not None, "start() first"
        code = self.process.poll()
        if code is None:
            return None
        return ServiceError(
            f"{' '.join(self.argv[1:4])} exited with code {code}; the end of {self.log_path}:\n"
            f"{tail(self.log_path)}"
        )

    def wait_ready(self, path: str = "/readyz", timeout_s: float = 60.0) -> None:
        """Polls `path` until it answers 200; fails early if the child exits."""
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        with httpx.Client(base_url=self.base_url, timeout=2.0) as http:
            while time.monotonic() < deadline:
                if (exited := self._exited()) is not None:
                    raise exited
                try:
                    response = http.get(path)
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text}"
                except httpx.HTTPError as exc:
                    last = str(exc) or type(exc).__name__
                time.sleep(0.2)
        raise ServiceError(f"the service was not ready within {timeout_s:g} s ({last})")

    async def wait_ready_async(self, path: str = "/readyz", timeout_s: float = 60.0) -> None:
        """`wait_ready` for a caller on an event loop (the benchmarks)."""
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as http:
            while time.monotonic() < deadline:
                if (exited := self._exited()) is not None:
                    raise exited
                try:
                    response = await http.get(path)
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text}"
                except httpx.HTTPError as exc:
                    last = str(exc) or type(exc).__name__
                await asyncio.sleep(0.2)
        raise ServiceError(f"the service was not ready within {timeout_s:g} s ({last})")

    def stop(self) -> int | None:
        """SIGINT (uvicorn's graceful stop), then SIGTERM, then SIGKILL; answers the exit code."""
        process = self.process
        if process is None:
            return None
        try:
            for signum, wait_s in (
                (signal.SIGINT, self.stop_grace_s),
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
