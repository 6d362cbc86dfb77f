"""`python -m devtools.cluster up|down|status|chaos|restore-check` (`make cluster`,
`make cluster-stop`, `make cluster-chaos`, `make cluster-restore-check`): the
high-availability set-up of deploy/ on three test hosts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from devtools import localdev
from devtools.cluster import backups, hosts
from devtools.cluster import components as c
from devtools.cluster.hosts import DATA_HOSTS, H1, H3, HOSTS


def up() -> None:
    c.ensure_packages()
    hosts.create()
    configs = {host: c.write_configs(host) for host in HOSTS}
    c.log("starting etcd on h1, h2, h3")
    for host in HOSTS:
        c.start(host, "etcd", c.argv_for(host, "etcd", configs[host]))
    for host in HOSTS:
        c.wait_until(
            f"etcd on {host.name}",
            lambda h=host: c.http_status(f"http://{h.address}:2379/health") == 200,
        )
    c.log("starting Redis on h1 (master) and h2 (replica), a Sentinel on each host")
    for host in DATA_HOSTS:
        c.start(host, "redis", c.argv_for(host, "redis", configs[host]))
    for host in HOSTS:
        c.start(host, "sentinel", c.argv_for(host, "sentinel", configs[host]))
    c.wait_until("Redis's master, as the Sentinels see it", lambda: c.redis_master() is not None)
    c.log("starting Patroni (PostgreSQL/PostGIS) on h1 and h2")
    # Both at once: on a restart, the one that was primary last must be there to lead again.
    for host in DATA_HOSTS:
        c.start(host, "patroni", c.argv_for(host, "patroni", configs[host]))
    c.wait_until("a PostgreSQL primary", lambda: c.primary() is not None, timeout_s=120)
    c.wait_until(
        "PostgreSQL's synchronous replica",
        lambda: "sync_standby/running" in c.patroni_roles().values(),
        timeout_s=180,
    )
    create_database()
    c.log("creating pgBackRest's stanza (WAL archived from the first segment)")
    backups.ensure_stanza()
    c.log("starting HAProxy on h3")
    c.start(H3, "haproxy", c.argv_for(H3, "haproxy", configs[H3]))
    c.wait_until("HAProxy", lambda: c.http_status(f"http://{H3.address}:8404/") == 200)
    c.log("migrating the database (once, through HAProxy to the primary)")
    subprocess.run(
        [sys.executable, "-m", "server", "migrate"], env=c.worker_env(H1), check=True, cwd=c.REPO
    )
    c.log("starting a worker on h1 and on h2")
    for host in DATA_HOSTS:
        c.start(host, "worker", c.argv_for(host, "worker", configs[host]), env=c.worker_env(host))
    for host in DATA_HOSTS:
        c.wait_until(
            f"the worker on {host.name}",
            lambda h=host: c.http_status(f"http://{h.address}:{c.WORKER_PORT}/readyz") == 200,
            timeout_s=180,
        )
    c.wait_until(
        "the service through HAProxy",
        lambda: c.http_status(f"http://{H3.address}:{c.HTTP_PORT}/readyz") == 200,
    )
    status()
    print(f"the service: http://{H3.address}:{c.HTTP_PORT}/ (`make cluster-stop` stops it all)")


def create_database() -> None:
    primary = c.primary()
    assert primary is not None
    bindir = localdev.find_postgres_bindir()
    assert bindir is not None
    env = dict(os.environ, PGPASSWORD=c.cluster_secrets()["db_password"])
    base = [str(bindir / "psql"), "-h", primary.address, "-U", c.DB_USER, "-tAq", "-d", "postgres"]
    exists = subprocess.run(
        [*base, "-c", "SELECT 1 FROM pg_database WHERE datname = 'coop'"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    if exists != "1":
        subprocess.run([*base, "-c", "CREATE DATABASE coop"], env=env, check=True)


def down() -> int:
    """Stops every component, removes the namespaces and the bridge; then proves nothing is
    left: 1 if anything is."""
    primary = c.primary()
    for component in c.STOP_ORDER:
        # The replica before the primary: a primary stopped first hands over to its replica.
        for host in sorted(HOSTS, key=lambda h: h == primary):
            if c.pid_alive(host, component):
                c.log(f"stopping {component} on {host.name}")
                c.stop_component(host, component)
    # Whatever still runs inside our namespaces was started by us (a postgres a killed Patroni
    # left, a worker's child): it goes with its host.
    for host in HOSTS:
        for pid in hosts.pids(host):
            c.log(f"killing pid {pid} left in {host.namespace}")
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    while any(hosts.pids(h) for h in HOSTS) and time.monotonic() < deadline:
        time.sleep(0.1)
    hosts.remove()
    left = leftovers()
    if left:
        c.log("still there: " + "; ".join(left))
        return 1
    c.log("stopped: no cluster process, namespace or bridge is left")
    return 0


def leftovers() -> list[str]:
    found = hosts.leftovers()
    for host in HOSTS:
        for component in c.STOP_ORDER:
            pid = c.pid_alive(host, component)
            if pid is not None:
                found.append(f"{component} on {host.name} (pid {pid})")
    # Any process whose files are under the cluster's folder (a postgres, a Patroni).
    root = str(c.state_root())
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                command = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if root in command:
                found.append(f"pid {entry}: {command[:80]}")
    return found


def status() -> None:
    for host in HOSTS:
        running = [comp for comp in reversed(c.STOP_ORDER) if c.pid_alive(host, comp)]
        print(f"{host.name} {host.address}: {', '.join(running) or 'nothing running'}")
    print(f"PostgreSQL (Patroni): {c.patroni_roles() or 'unreachable'}")
    print(f"Redis master (Sentinel): {c.redis_master() or 'unknown'}")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"up", "down", "status", "chaos", "restore-check"}:
        print(__doc__, file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("the cluster's network namespaces need root", file=sys.stderr)
        return 1
    try:
        if argv[0] == "up":
            up()
            return 0
        if argv[0] == "down":
            return down()
        if argv[0] == "status":
            status()
            return 0
        if argv[0] == "restore-check":
            return backups.restore_check()
        from devtools.cluster import chaos

        code: int = chaos.main(argv[1:])
        return code
    except localdev.SetupError as exc:
        c.log(str(exc))
        return 1
    except subprocess.CalledProcessError as exc:
        c.log(f"a set-up step failed: {' '.join(map(str, exc.cmd))} (exit {exc.returncode})")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
