"""Each component of deploy/ on its test host: its configuration rendered from the template,
started as a process inside the host's namespace (its pid kept under .var/cluster/pids/), waited
for until it answers, and stopped. Standard library only, as localdev."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from devtools import localdev
from devtools.cluster import hosts
from devtools.cluster.hosts import DATA_HOSTS, H1, H2, H3, HOSTS, Host

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
APT_PACKAGES = ["patroni", "etcd-server", "etcd-client", "redis-sentinel", "haproxy", "pgbackrest"]
DB_USER = "coop"
REPLICATION_USER = "replicator"
WORKER_PORT = 8000
HTTP_PORT = 8080  # HAProxy, for the apps
PG_PORT = 5000  # HAProxy, to the primary
REDIS_PORT = 6379
SENTINEL_PORT = 26379
PATRONI_PORT = 8008
# The order of stopping: what uses a store before the store, etcd last (Patroni needs it to
# stop cleanly as a primary).
STOP_ORDER = ("worker", "haproxy", "patroni", "sentinel", "redis", "etcd")


def log(message: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def state_root() -> Path:
    return localdev.data_dir() / "cluster"


def host_dir(host: Host) -> Path:
    return state_root() / host.name


def pid_path(host: Host, component: str) -> Path:
    return state_root() / "pids" / f"{host.name}-{component}.pid"


# --- packages -------------------------------------------------------------------------------


def ensure_packages() -> None:
    binaries = ["patroni", "etcd", "etcdctl", "redis-sentinel", "haproxy", "pgbackrest"]
    missing = [name for name in binaries if not shutil.which(name, path="/usr/bin:/usr/sbin")]
    if missing:
        localdev.apt_install(APT_PACKAGES)
    localdev.ensure_packages(need_pg=True, need_redis=True)
    # Each package may have started its system-wide service (where no policy-rc.d forbade it):
    # the cluster runs private instances only, so the stock ones are stopped and disabled.
    if not Path("/run/systemd/system").exists():
        return  # no systemd: nothing was started (policy-rc.d forbids it during the install)
    for unit in ("patroni", "etcd", "redis-sentinel", "redis-server", "haproxy"):
        subprocess.run(["systemctl", "disable", "--now", unit], check=False, capture_output=True)


# --- secrets and configuration -------------------------------------------------------------


def cluster_secrets() -> dict[str, str]:
    """Passwords and keys of this test cluster, made once and kept in .var/cluster/secrets.json."""
    path = state_root() / "secrets.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    values = {
        name: secrets.token_urlsafe(32)
        for name in (
            "db_password",
            "replication_password",
            "admin_token",
            "ballot_key",
            "pseudonym_key",
        )
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def render(template: str, values: dict[str, str]) -> str:
    text = (DEPLOY / template).read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        raise localdev.SetupError(f"deploy/{template}: a placeholder was left unfilled")
    return text


def values_for(host: Host) -> dict[str, str]:
    found = localdev.find_postgres_bindir()
    assert found is not None
    return {
        "host": host.name,
        "address": host.address,
        "state_dir": str(host_dir(host)),
        "subnet": hosts.SUBNET,
        "etcd_initial_cluster": ",".join(f"{h.name}=http://{h.address}:2380" for h in HOSTS),
        "etcd_hosts": ",".join(f"{h.address}:2379" for h in HOSTS),
        "pg_bin_dir": str(found),
        "db_user": DB_USER,
        "replication_user": REPLICATION_USER,
        "redis_master": H1.address,
        "replicaof": "" if host is H1 else f"replicaof {H1.address} {REDIS_PORT}",
        "h1_address": H1.address,
        "h2_address": H2.address,
        "h3_address": H3.address,
        "sentinels": ",".join(f"{h.address}:{SENTINEL_PORT}" for h in HOSTS),
        "backup_repo": str(backup_repo()),
        "coop_env": "dev",
        "meter_time_scale": "4",
        **cluster_secrets(),
    }


def write_configs(host: Host) -> dict[str, Path]:
    folder = host_dir(host)
    values = values_for(host)
    files = {"etcd": "etcd.yml", "sentinel": "sentinel.conf"}
    if host in DATA_HOSTS:
        files |= {
            "patroni": "patroni.yml",
            "pgbackrest": "pgbackrest.conf",
            "redis": "redis.conf",
            "worker": "coop.env",
        }
    else:
        files |= {"haproxy": "haproxy.cfg"}
    written: dict[str, Path] = {}
    for component, template in files.items():
        (folder / component).mkdir(parents=True, exist_ok=True)
        path = folder / "conf" / template
        path.parent.mkdir(parents=True, exist_ok=True)
        # Sentinel rewrites its own file as it learns the replicas: written once, then it is its.
        if component != "sentinel" or not path.exists():
            path.write_text(render(template, values))
            path.chmod(0o600)
        written[component] = path
    if "patroni" in written:
        (folder / "pg").mkdir(mode=0o700, exist_ok=True)
        backup_repo().mkdir(mode=0o750, parents=True, exist_ok=True)
        # pgBackRest runs as PostgreSQL's user (archive_command), so it owns what it writes.
        owned = [folder / "pg", folder / "patroni", written["patroni"], written["pgbackrest"]]
        owned += [folder / "pgbackrest", backup_repo()]
        for path in owned:
            os.chown(path, *postgres_ids())
    return written


def backup_repo() -> Path:
    """pgBackRest's repository: host 3's on real machines; here a folder every test host sees."""
    return state_root() / "backups"


def postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def worker_env(host: Host) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
    for line in (host_dir(host) / "conf" / "coop.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


# --- processes ------------------------------------------------------------------------------


def pid_alive(host: Host, component: str) -> int | None:
    return localdev.pid_alive(pid_path(host, component))


def start(
    host: Host, component: str, argv: Sequence[str], env: dict[str, str] | None = None
) -> None:
    """`argv` inside the host's namespace, in a session of its own, its output in logs/."""
    if pid_alive(host, component):
        return
    logs = host_dir(host) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{component}.log").open("ab") as output:
        process = subprocess.Popen(
            ["ip", "netns", "exec", host.namespace, *argv],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd="/",
        )
    path = pid_path(host, component)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(process.pid))  # `ip netns exec` execs the command: the same pid


def argv_for(host: Host, component: str, configs: dict[str, Path]) -> list[str]:
    conf = str(configs[component])
    if component == "etcd":
        return ["etcd", "--config-file", conf]
    if component == "patroni":
        # PostgreSQL refuses to run as root.
        uid, gid = postgres_ids()
        return [
            "setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--",
            "env", "HOME=/var/lib/postgresql", "patroni", conf,
        ]  # fmt: skip
    if component == "redis":
        return ["redis-server", conf]
    if component == "sentinel":
        return ["redis-sentinel", conf]
    if component == "haproxy":
        return ["/usr/sbin/haproxy", "-db", "-f", conf]
    if component == "worker":
        return [sys.executable, "-m", "server", "serve"]
    raise ValueError(component)


def signal_component(host: Host, component: str, signum: int) -> int | None:
    pid = pid_alive(host, component)
    if pid is not None:
        os.kill(pid, signum)
    return pid


def stop_component(host: Host, component: str, grace_s: float = 30.0) -> None:
    pid = pid_alive(host, component)
    if pid is None:
        pid_path(host, component).unlink(missing_ok=True)
        return
    for signum, wait_s in ((signal.SIGCONT, 0.0), (signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.1)
        if not _running(pid):
            break
    pid_path(host, component).unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child of ours that exited is a zombie until reaped: not running.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return True


# --- readiness ------------------------------------------------------------------------------


def wait_until(what: str, probe: object, timeout_s: float = 90.0) -> None:
    assert callable(probe)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise localdev.SetupError(
        f"{what} did not come up within {timeout_s:g} s (see .var/cluster/*/logs)"
    )


def http_status(url: str, method: str = "GET", timeout_s: float = 1.0) -> int | None:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, TimeoutError):
        return None


def http_json(url: str, timeout_s: float = 1.0) -> object:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.loads(response.read())


def redis_command(address: str, port: int, *words: str, timeout_s: float = 1.0) -> str:
    """One command in Redis's inline protocol; the raw answer."""
    with socket.create_connection((address, port), timeout=timeout_s) as connection:
        connection.sendall((" ".join(words) + "\r\n").encode())
        return connection.recv(65536).decode(errors="replace")


def patroni_roles() -> dict[str, str]:
    """Each PostgreSQL host's role as Patroni tells it (`leader`, `sync_standby`, `replica`...)."""
    for host in DATA_HOSTS:
        try:
            cluster = http_json(f"http://{host.address}:{PATRONI_PORT}/cluster")
        except (OSError, ValueError):
            continue
        assert isinstance(cluster, dict)
        return {m["name"]: f"{m['role']}/{m.get('state', '?')}" for m in cluster.get("members", [])}
    return {}


def primary() -> Host | None:
    for host in DATA_HOSTS:
        if http_status(f"http://{host.address}:{PATRONI_PORT}/primary", "OPTIONS") == 200:
            return host
    return None


def redis_master() -> str | None:
    """The master's address, as the Sentinels see it."""
    for host in HOSTS:
        try:
            answer = redis_command(
                host.address, SENTINEL_PORT, "SENTINEL", "get-master-addr-by-name", "coop"
            )
        except OSError:
            continue
        lines = answer.split("\r\n")
        if len(lines) > 2 and lines[0] == "*2":
            return lines[2]
    return None
