"""Real servers a test can start, stop and restart: a Redis of its own on a Unix socket."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from coop.settings import Settings
from devtools.localdev import find_redis_server
from devtools.processes import ServiceProcess


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


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def service_process(settings: Settings, log_path: Path, **overrides: str) -> ServiceProcess:
    """`python -m server serve` in its own process, on the test database and Redis database:
    the service as it really runs (its own logging set-up, uvicorn's access log). `overrides`
    are more COOP_ settings, e.g. `COOP_API_LIMIT="5/minute"`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("COOP_")}
    env.update(
        COOP_ENV="test",
        COOP_DATA_DIR=str(settings.data_dir),
        COOP_DATABASE_URL=settings.database_url,
        COOP_REDIS_URL=settings.redis_url,
        COOP_ADMIN_TOKEN=settings.admin_token,
        COOP_BACKGROUND_TASKS="false",
        COOP_LOG_JSON="true",
        COOP_SIGNUP_LIMIT=settings.signup_limit,
        COOP_API_LIMIT=settings.api_limit,
        COOP_SIGNUP_GLOBAL_LIMIT=settings.signup_global_limit,
        COOP_ANONYMOUS_LIMIT=settings.anonymous_limit,
        COOP_GC_FREEZE="false",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    env.update(overrides)
    return ServiceProcess(host="127.0.0.1", port=free_port(), log_path=log_path, env=env)


class UnixRelay:
    """A relay from a Unix socket of its own to another one (a Redis's), which the test can cut
    (every connection through it is dropped, new ones refused) and restore."""

    def __init__(self, listen: Path, upstream: Path) -> None:
        self.listen = listen
        self.upstream = upstream
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    @property
    def redis_url(self) -> str:
        return f"unix://{self.listen}"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(str(self.upstream))
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> None:
        self.listen.unlink(missing_ok=True)
        self.server = await asyncio.start_unix_server(self._handle, path=str(self.listen))

    async def cut(self) -> None:
        if self.server is None:
            return
        self.server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        await self.server.wait_closed()
        self.server = None
        self.listen.unlink(missing_ok=True)


class SocketProxy:
    """A Unix-socket TCP relay to the real PostgreSQL that the test can switch off and on."""

    def __init__(self, listen: Path, upstream_host: str, upstream_port: int) -> None:
        self.listen = listen
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.flowing = asyncio.Event()
        self.flowing.set()

    def pause(self) -> None:
        """A cut link: nothing flows either way, nothing is closed (no error, only silence)."""
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.upstream_host.startswith("/"):
            socket_path = f"{self.upstream_host}/.s.PGSQL.{self.upstream_port}"
            up_reader, up_writer = await asyncio.open_unix_connection(socket_path)
        else:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> None:
        self.listen.unlink(missing_ok=True)
        self.server = await asyncio.start_unix_server(self._handle, path=str(self.listen))

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        await self.server.wait_closed()
        self.listen.unlink(missing_ok=True)


@asynccontextmanager
async def postgres_relay(
    settings: Settings, folder: Path
) -> AsyncIterator[tuple[SocketProxy, str]]:
    """A relay to the test PostgreSQL that the test can switch off; answers it and a database
    URL through it."""
    url = make_url(settings.database_url)
    proxy = SocketProxy(
        folder / ".s.PGSQL.5432", str(url.query.get("host") or url.host), url.port or 5432
    )
    await proxy.start()
    proxied = url.set(host=None, port=None).update_query_dict({"host": str(folder)})
    try:
        yield proxy, proxied.render_as_string(False)
    finally:
        if proxy.server is not None and proxy.server.is_serving():
            await proxy.stop()
