"""Private PostgreSQL/PostGIS and Redis instances for development, tests and the demo.

Standard library only: the Makefile runs it before anything else is known to work.

    python -m devtools.localdev up            start what is not running, print the environment
    python -m devtools.localdev down          stop the private instances of COOP_DATA_DIR
    python -m devtools.localdev status
    python -m devtools.localdev browser       install Debian's Chromium if missing (for the
                                                   browser tests), print its path
    python -m devtools.localdev run -- CMD    start what is missing, run CMD, stop what it
                                                   started

Data lives under COOP_DATA_DIR (default `.var/`); both servers listen only on Unix sockets inside
it, so no TCP port can clash with anything. When COOP_DATABASE_URL or COOP_REDIS_URL is set, that
server is used as it is and nothing private is started for it.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

DB_NAME = "coop"
DB_USER = "coop"
PG_PORT = 5432  # only names the socket file; the instance listens on no TCP port
APT_PACKAGES_PG = ["postgresql", "postgresql-postgis"]
APT_PACKAGES_REDIS = ["redis-server"]
# The browser tests of the web pages drive Debian's Chromium (no browser download is needed).
APT_PACKAGES_BROWSER = ["chromium"]


class SetupError(RuntimeError):
    """A set-up step that cannot go on; the message says what to do."""


def log(message: str) -> None:
    print(f"[localdev] {message}", file=sys.stderr, flush=True)


def data_dir() -> Path:
    path = Path(os.environ.get("COOP_DATA_DIR") or ".var").absolute()
    path.mkdir(parents=True, exist_ok=True)
    return path


def is_root() -> bool:
    return os.geteuid() == 0


# --- packages -------------------------------------------------------------------------------


def find_postgres_bindir() -> Path | None:
    """The newest Debian PostgreSQL whose PostGIS extension is installed."""
    candidates = []
    for bindir in glob.glob("/usr/lib/postgresql/*/bin"):
        version = Path(bindir).parent.name
        has_postgis = glob.glob(f"/usr/share/postgresql/{version}/extension/postgis.control")
        if has_postgis and Path(bindir, "postgres").exists():
            candidates.append((float(version), Path(bindir)))
    return max(candidates)[1] if candidates else None


def find_redis_server() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def apt_install(packages: list[str]) -> None:
    if not is_root():
        raise SetupError(
            "missing system packages; install them and run again:\n"
            f"    sudo apt-get install -y {' '.join(packages)}"
        )
    log(f"installing Debian packages: {' '.join(packages)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # A fresh machine has no package lists yet; an outdated list can name removed versions.
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    # The Debian packages start their own system-wide servers through policy-rc.d; we use
    # private instances, so forbid that for the duration of the install.
    policy = Path("/usr/sbin/policy-rc.d")
    had_policy = policy.exists()
    if not had_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    finally:
        if not had_policy:
            policy.unlink(missing_ok=True)


def ensure_packages(need_pg: bool, need_redis: bool) -> None:
    missing: list[str] = []
    if need_pg and find_postgres_bindir() is None:
        missing += APT_PACKAGES_PG
    if need_redis and find_redis_server() is None:
        missing += APT_PACKAGES_REDIS
    if missing:
        apt_install(missing)
    if need_pg and find_postgres_bindir() is None:
        raise SetupError("PostgreSQL with PostGIS is still missing after the install")
    if need_redis and find_redis_server() is None:
        raise SetupError("redis-server is still missing after the install")


def find_chromium() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )


def ensure_browser() -> str:
    """Debian's Chromium for the browser tests, installed when missing; answers its path."""
    found = find_chromium()
    if found is None:
        apt_install(APT_PACKAGES_BROWSER)
        found = find_chromium()
    if found is None:
        raise SetupError("chromium is still missing after the install")
    return found


# --- PostgreSQL -----------------------------------------------------------------------------


def pg_run_as() -> list[str]:
    """PostgreSQL refuses to run as root: run it as the unprivileged `postgres` user then."""
    if not is_root():
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise SetupError("running as root, but there is no 'postgres' system user") from exc
    return ["runuser", "-u", "postgres", "--"]


def reachable_by_postgres(path: Path) -> bool:
    if not is_root():
        return True
    probe = subprocess.run([*pg_run_as(), "test", "-x", str(path)], check=False, cwd="/")
    return probe.returncode == 0


def pg_dir(base: Path) -> Path:
    """Where the cluster lives: inside COOP_DATA_DIR when `postgres` can reach it.

    A checkout inside a home folder closed to others cannot be reached by the `postgres` user;
    the cluster then lives in a folder of its own under /var/tmp, linked from COOP_DATA_DIR.
    """
    link = base / "pg"
    if link.is_symlink() or link.exists():
        return link.resolve()
    if reachable_by_postgres(base):
        link.mkdir(mode=0o700)
        target = link
    else:
        digest = hashlib.sha256(str(base).encode()).hexdigest()[:12]
        target = Path("/var/tmp") / f"coop-pg-{digest}"
        if target.exists():
            # Left by an earlier installation at this path: an empty COOP_DATA_DIR means a new
            # installation, so its database must not come back.
            stale_bindir = find_postgres_bindir()
            if stale_bindir and pg_is_running(stale_bindir, target):
                subprocess.run(
                    [
                        *pg_run_as(),
                        str(stale_bindir / "pg_ctl"),
                        "stop",
                        "-m",
                        "fast",
                        "-w",
                        "-D",
                        str(target),
                    ],
                    check=False,
                    cwd="/",  # the postgres user may not be able to enter ours
                    stdout=subprocess.DEVNULL,
                )
            shutil.rmtree(target)
        target.mkdir(mode=0o700)
        link.symlink_to(target)
        log(f"{base} is closed to the postgres user; the cluster lives in {target}")
    if is_root():
        shutil.chown(target, "postgres", "postgres")
    return target


def pg_is_running(bindir: Path, cluster: Path) -> bool:
    if not (cluster / "PG_VERSION").exists():
        return False
    result = subprocess.run(
        [*pg_run_as(), str(bindir / "pg_ctl"), "status", "-D", str(cluster)],
        check=False,
        cwd="/",  # the postgres user may not be able to enter ours
        capture_output=True,
    )
    return result.returncode == 0


def psql(bindir: Path, socket_dir: Path, sql: str, database: str = "postgres") -> str:
    result = subprocess.run(
        [
            str(bindir / "psql"),
            "-h",
            str(socket_dir),
            "-p",
            str(PG_PORT),
            "-U",
            DB_USER,
            "-d",
            database,
            "-tAq",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def pg_up(base: Path) -> bool:
    """Start the private cluster if it is not running; True when this call started it."""
    bindir = find_postgres_bindir()
    assert bindir is not None
    cluster = pg_dir(base)
    if pg_is_running(bindir, cluster):
        return False
    if not (cluster / "PG_VERSION").exists():
        log(f"creating a PostgreSQL cluster in {cluster}")
        subprocess.run(
            [
                *pg_run_as(),
                str(bindir / "initdb"),
                "-D",
                str(cluster),
                "-U",
                DB_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            cwd="/",  # the postgres user may not be able to enter ours
            stdout=subprocess.DEVNULL,
        )
    options = " ".join(
        [
            "-c listen_addresses=''",
            f"-c unix_socket_directories='{cluster}'",
            f"-p {PG_PORT}",
            # A private development instance: durability is traded for speed.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            "-c max_connections=200",
            # Every worker rewrites each driver's position row several times a second, and an
            # update that moves the indexed position cannot be a HOT one: the table gathers
            # hundreds of thousands of dead rows within the default minute between autovacuum
            # runs, and flushes slow down until the next (docs/reliability.md).
            "-c autovacuum_naptime=10s",
        ]
    )
    log("starting PostgreSQL")
    subprocess.run(
        [
            *pg_run_as(),
            str(bindir / "pg_ctl"),
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(cluster),
            "-l",
            str(cluster / "server.log"),
            "-o",
            options,
        ],
        check=True,
        cwd="/",  # the postgres user may not be able to enter ours
        stdout=subprocess.DEVNULL,
    )
    exists = psql(bindir, cluster, f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'")
    if exists != "1":
        psql(bindir, cluster, f"CREATE DATABASE {DB_NAME}")
    return True


def pg_down(base: Path) -> None:
    bindir = find_postgres_bindir()
    link = base / "pg"
    if bindir is None or not (link.exists() or link.is_symlink()):
        return
    cluster = link.resolve()
    if pg_is_running(bindir, cluster):
        log("stopping PostgreSQL")
        subprocess.run(
            [*pg_run_as(), str(bindir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(cluster)],
            check=False,
            cwd="/",  # the postgres user may not be able to enter ours
            stdout=subprocess.DEVNULL,
        )


def pg_url(base: Path) -> str:
    return f"postgresql+asyncpg://{DB_USER}@/{DB_NAME}?host={(base / 'pg').resolve()}"


# --- Redis ----------------------------------------------------------------------------------


def redis_paths(base: Path) -> tuple[Path, Path, Path]:
    folder = base / "redis"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder, folder / "redis.sock", folder / "redis.pid"


def pid_alive(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    return pid


def redis_up(base: Path) -> bool:
    folder, socket, pidfile = redis_paths(base)
    if pid_alive(pidfile) and socket.exists():
        return False
    server = find_redis_server()
    assert server is not None
    log("starting Redis")
    subprocess.run(
        [
            server,
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(folder),
            "--pidfile",
            str(pidfile),
            "--logfile",
            str(folder / "redis.log"),
            "--daemonize",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
    )
    # Ready once it listens and its pid file names it: the daemon may write the file after it
    # opens the socket, and whatever stops it later finds it by that file.
    deadline = time.monotonic() + 20
    while not (socket.exists() and pid_alive(pidfile)):
        if time.monotonic() > deadline:
            raise SetupError(f"Redis did not start; see {folder / 'redis.log'}")
        time.sleep(0.05)
    return True


def redis_down(base: Path) -> None:
    _, socket, pidfile = redis_paths(base)
    pid = pid_alive(pidfile)
    if pid is None:
        return
    log("stopping Redis")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while pid_alive(pidfile) and time.monotonic() < deadline:
        time.sleep(0.05)
    socket.unlink(missing_ok=True)


def redis_url(base: Path) -> str:
    return f"unix://{base / 'redis' / 'redis.sock'}"


# --- commands -------------------------------------------------------------------------------


def up() -> tuple[dict[str, str], list[str]]:
    """Make both services reachable; the environment to use them and what was started."""
    base = data_dir()
    external_pg = bool(os.environ.get("COOP_DATABASE_URL"))
    external_redis = bool(os.environ.get("COOP_REDIS_URL"))
    ensure_packages(need_pg=not external_pg, need_redis=not external_redis)
    env: dict[str, str] = {"COOP_DATA_DIR": str(base)}
    started: list[str] = []
    if external_pg:
        env["COOP_DATABASE_URL"] = os.environ["COOP_DATABASE_URL"]
    else:
        if pg_up(base):
            started.append("postgres")
        env["COOP_DATABASE_URL"] = pg_url(base)
    if external_redis:
        env["COOP_REDIS_URL"] = os.environ["COOP_REDIS_URL"]
    else:
        if redis_up(base):
            started.append("redis")
        env["COOP_REDIS_URL"] = redis_url(base)
    return env, started


def down(which: list[str] | None = None) -> None:
    base = data_dir()
    if which is None or "redis" in which:
        redis_down(base)
    if which is None or "postgres" in which:
        pg_down(base)


def run(command: list[str]) -> int:
    env, started = up()
    child_env = dict(os.environ, **env)
    process = subprocess.Popen(command, env=child_env)
    # Ctrl-C reaches the whole foreground process group; wait for the child to finish its own
    # shutdown, then stop what this call started.
    try:
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:
                continue
    finally:
        if started:
            down(started)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"up", "down", "status", "run", "browser"}:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        if argv[0] == "up":
            env, _ = up()
            for key, value in env.items():
                print(f"export {key}='{value}'")
            return 0
        if argv[0] == "down":
            down()
            return 0
        if argv[0] == "browser":
            print(ensure_browser())
            return 0
        if argv[0] == "status":
            base = data_dir()
            bindir = find_postgres_bindir()
            link = base / "pg"
            pg_running = bool(bindir and link.exists() and pg_is_running(bindir, link.resolve()))
            _, _, pidfile = redis_paths(base)
            print(f"postgres: {'running' if pg_running else 'stopped'}")
            print(f"redis: {'running' if pid_alive(pidfile) else 'stopped'}")
            return 0
        command = argv[1:]
        if command and command[0] == "--":
            command = command[1:]
        if not command:
            print("run needs a command after --", file=sys.stderr)
            return 2
        return run(command)
    except SetupError as exc:
        log(str(exc))
        return 1
    except subprocess.CalledProcessError as exc:
        log(f"a set-up step failed: {' '.join(map(str, exc.cmd))} (exit {exc.returncode})")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
