"""Real servers a test can start, stop and restart: a Redis of its own on a Unix socket."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from dispatch.core.localdev import find_redis_server


class ThrowawayRedis:
    """A private redis-server in `folder`, for tests of what happens while Redis is down."""

    def __init__(self, folder: Path) -> None:
        server = find_redis_server()
        assert server is not None, "redis-server is not installed"
        self.server = server
        self.folder = folder
        self.socket = folder / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    async def start(self) -> None:
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                self.server,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(250):
            if self.socket.exists():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
        self.socket.unlink(missing_ok=True)
