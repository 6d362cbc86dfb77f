"""pgBackRest on the test hosts: the stanza made when the cluster comes up (so Patroni's
archive_command has somewhere to push from the first segment), and `make cluster-restore-check`,
the rehearsal of a point-in-time restore that docs/deployment.md asks of a co-op every month.

The rehearsal takes a full backup from the primary, writes a row, notes the moment, writes a
second row, and restores the backup plus the archived WAL up to that moment into an empty folder.
The restored PostgreSQL (on a Unix socket only, in the machine's namespace) must then hold the
first row and not the second, hold every audit entry written by that moment, and pass
`python -m server verify-audit`. Standard library only, as the rest of devtools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devtools import localdev
from devtools.cluster import components as c
from devtools.cluster.hosts import Host

STANZA = "coop"
# The rehearsal's own table: written on the live cluster, read on the restored copy.
MARKERS = "restore_rehearsal"


def _as_postgres(host: Host | None, argv: list[str]) -> list[str]:
    uid, gid = c.postgres_ids()
    inner = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--", *argv]
    return inner if host is None else ["ip", "netns", "exec", host.namespace, *inner]


def pgbackrest(host: Host, *args: str, timeout_s: float = 600) -> str:
    """A pgBackRest command on `host`, as PostgreSQL's user, with the host's configuration."""
    conf = c.host_dir(host) / "conf" / "pgbackrest.conf"
    argv = _as_postgres(host, ["pgbackrest", f"--config={conf}", f"--stanza={STANZA}", *args])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, cwd="/")
    if done.returncode != 0:
        raise localdev.SetupError(
            f"pgbackrest {' '.join(args)} on {host.name} failed (exit {done.returncode}): "
            + (done.stderr or done.stdout).strip()[-600:]
        )
    return done.stdout


def ensure_stanza() -> None:
    """The repository's stanza for this cluster (idempotent): until it exists every archive
    push fails and WAL piles up on the primary."""
    primary = c.primary()
    assert primary is not None
    pgbackrest(primary, "stanza-create")
    # `check` forces a WAL switch and waits until that segment is in the repository.
    pgbackrest(primary, "check")


def _psql(host: Host, sql: str) -> str:
    bindir = localdev.find_postgres_bindir()
    assert bindir is not None
    env = dict(os.environ, PGPASSWORD=c.cluster_secrets()["db_password"])
    argv = [str(bindir / "psql"), "-h", host.address, "-U", c.DB_USER, "-d", "coop", "-tAq"]
    done = subprocess.run(
        [*argv, "-v", "ON_ERROR_STOP=1", "-c", sql],
        env=env, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        raise localdev.SetupError(f"psql on {host.name}: {done.stderr.strip()[-400:]}")
    return done.stdout.strip()


@dataclass
class Rehearsal:
    backup_s: float
    backup_bytes: int
    restore_s: float
    target: str
    audit_entries: int
    markers_found: list[str]
    audit_verdict: str


def restore_check() -> int:
    primary = c.primary()
    if primary is None:
        c.log("no PostgreSQL primary: run `make cluster` first")
        return 1
    ensure_stanza()
    _psql(
        primary,
        f"CREATE TABLE IF NOT EXISTS {MARKERS} (label text PRIMARY KEY, written_at timestamptz"
        " NOT NULL DEFAULT clock_timestamp()); TRUNCATE {MARKERS}".replace("{MARKERS}", MARKERS),
    )
    c.log(f"a full backup from the primary ({primary.name})")
    started = time.monotonic()
    pgbackrest(primary, "--type=full", "backup")
    backup_s = time.monotonic() - started
    backup_bytes = _folder_bytes(c.backup_repo() / "backup")
    # After the backup, so that only the archived WAL can bring them back.
    _psql(primary, f"INSERT INTO {MARKERS} (label) VALUES ('before')")
    # Counted before the target is taken: every entry counted is then older than the target.
    audit_entries = int(_psql(primary, "SELECT count(*) FROM audit_entry"))
    target = _psql(primary, "SELECT clock_timestamp()")
    time.sleep(1.5)
    _psql(primary, f"INSERT INTO {MARKERS} (label) VALUES ('after')")
    # The segments holding both rows archived, so that recovery can pass the target.
    pgbackrest(primary, "check")
    c.log(f"restoring to {target} into an empty folder")
    rehearsal = _restore_and_read(primary, target, backup_s, backup_bytes, audit_entries)
    print(
        f"backup: full, {rehearsal.backup_bytes / 1e6:.1f} MB in the repository, "
        f"{rehearsal.backup_s:.1f} s\n"
        f"restore to {rehearsal.target}: {rehearsal.restore_s:.1f} s until the restored "
        "PostgreSQL answered\n"
        f"rows of the rehearsal found: {', '.join(rehearsal.markers_found) or 'none'} "
        "(expected: before)\n"
        f"audit entries written by the target: {rehearsal.audit_entries}; "
        f"restored: {rehearsal.audit_verdict}"
    )
    ok = rehearsal.markers_found == ["before"] and rehearsal.audit_verdict.startswith("ok")
    c.log("the restore rehearsal " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def _restore_and_read(
    primary: Host, target: str, backup_s: float, backup_bytes: int, audit_entries: int
) -> Rehearsal:
    folder = c.state_root() / "restore"
    shutil.rmtree(folder, ignore_errors=True)
    data = folder / "data"
    data.mkdir(mode=0o700, parents=True)
    for path in (folder, data):
        os.chown(path, *c.postgres_ids())
    started = time.monotonic()
    pgbackrest(
        primary,
        f"--pg1-path={data}",
        "--type=time",
        f"--target={target}",
        "--target-action=promote",
        # The copy must never push WAL into the live cluster's archive.
        "--archive-mode=off",
        "restore",
    )
    bindir = localdev.find_postgres_bindir()
    assert bindir is not None
    # Patroni's postgresql.conf names the original host's files and addresses: the copy runs on
    # a Unix socket of its own, alone (no synchronous standby to wait for).
    options = " ".join(
        [
            "-c listen_addresses=''",
            f"-c unix_socket_directories={folder}",
            f"-c hba_file={data}/pg_hba.conf",
            f"-c ident_file={data}/pg_ident.conf",
            "-c synchronous_standby_names=''",
            "-c archive_mode=off",
            "-c cluster_name=restore",
        ]
    )
    ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "postgres.log")]
    subprocess.run(
        _as_postgres(None, [*ctl, "-o", options, "-w", "-t", "300", "start"]),
        check=True, capture_output=True, cwd="/",
    )  # fmt: skip
    try:
        _wait_promoted(bindir, folder)
        restore_s = time.monotonic() - started
        query = [str(bindir / "psql"), "-h", str(folder), "-U", c.DB_USER, "-d", "coop", "-tAq"]
        found = subprocess.run(
            [*query, "-c", f"SELECT label FROM {MARKERS} ORDER BY label"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
        env["COOP_DATABASE_URL"] = f"postgresql+asyncpg://{c.DB_USER}@/coop?host={folder}"
        verified = subprocess.run(
            [sys.executable, "-m", "server", "verify-audit"],
            env=env, capture_output=True, text=True, cwd=c.REPO, check=False,
        )  # fmt: skip
        verdict = (verified.stdout or verified.stderr).strip().splitlines()
        restored_entries = subprocess.run(
            [*query, "-c", "SELECT count(*) FROM audit_entry"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        complete = int(restored_entries) >= audit_entries
        summary = ("ok: " if verified.returncode == 0 and complete else "FAILED: ") + (
            f"{restored_entries} entries, " + (verdict[0] if verdict else "no answer")
        )
        return Rehearsal(backup_s, backup_bytes, restore_s, target, audit_entries, found, summary)
    finally:
        subprocess.run(
            _as_postgres(None, [*ctl, "-m", "fast", "-w", "stop"]), capture_output=True, cwd="/"
        )
        shutil.rmtree(folder, ignore_errors=True)


def _wait_promoted(bindir: Path, folder: Path) -> None:
    # Recovery replays the archived WAL up to the target, then promotes (target-action).
    query = [str(bindir / "psql"), "-h", str(folder), "-U", c.DB_USER, "-d", "postgres", "-tAq"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = subprocess.run(
            [*query, "-c", "SELECT pg_is_in_recovery()"], capture_output=True, text=True
        )
        if done.returncode == 0 and done.stdout.strip() == "f":
            return
        time.sleep(0.5)
    raise localdev.SetupError(f"the restored PostgreSQL did not finish recovery: {folder}")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
