"""One clock: the services read the time from the injected clock (`coop.clock.Now` in routes,
`CoreState.clock` elsewhere), never from the system. Only the clock's own modules read the
system's, and the exceptions below, each with its reason.

The scope is the packages whose conversion is done; extend `SCOPE` as others are converted.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCOPE = (
    "coop",
    "riders",
    "drivers/status.py",
    "bargaining/lifecycle.py",
    "pay/lifecycle.py",
    "dispatch/realtime",
    "server/app.py",
    "server/web/ops.py",
)
# Alembic's environment and revisions run outside the app: there is no app clock there.
OUTSIDE = ("coop/migrations",)

# Where the system clock is the clock: the default of `CoreState.clock` and what makes it.
THE_CLOCK = frozenset({"coop/clock.py", "coop/db.py", "coop/state.py"})

JUSTIFIED = {
    # Token lifetimes are checked against the system clock (`resolve_digest`, which the pages
    # call too): minting, listing and revoking tokens, and a socket's expiry timer, count on
    # the same clock, so they move to the app's clock together, pages included.
    "coop/auth.py": "token lifetimes",
    "coop/tokens.py": "token lifetimes (coop/auth.py)",
    # `append(at=...)` takes the caller's time; callers that pass none yet (bargaining, pay and
    # reputation services) get the system's.
    "coop/audit.py": "the date of an entry whose caller passes none",
    # The `limits` library's moving windows are in the system's seconds, in Redis: the ballot
    # counter's day and every Retry-After are counted on the same clock.
    "coop/ratelimit.py": "rate-limit windows",
    # How long a location frame waited is its client's stamp against the wall clock.
    "dispatch/realtime/session.py": "the reading delay of clients' stamps",
}


def clock_reads(source: str) -> list[int]:
    """The lines of `source` that read the system clock: `datetime.now()`, `datetime.utcnow()`,
    `utcnow()` and `time.time()`."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Name) and function.id == "utcnow":
            lines.append(node.lineno)
        elif isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name):
            owner, name = function.value.id, function.attr
            if (owner, name) in {("datetime", "now"), ("datetime", "utcnow"), ("time", "time")}:
                lines.append(node.lineno)
    return sorted(lines)


def modules_in_scope() -> list[Path]:
    found: list[Path] = []
    for entry in SCOPE:
        path = ROOT / entry
        found.extend([path] if path.suffix == ".py" else sorted(path.rglob("*.py")))
    return [
        path
        for path in found
        if not any(path.relative_to(ROOT).as_posix().startswith(skip) for skip in OUTSIDE)
    ]


def test_only_the_clock_reads_the_system_clock() -> None:
    offenders = {}
    for path in modules_in_scope():
        name = path.relative_to(ROOT).as_posix()
        if name in THE_CLOCK or name in JUSTIFIED:
            continue
        lines = clock_reads(path.read_text())
        if lines:
            offenders[name] = lines
    assert offenders == {}, (
        "these read the system clock: take `now` (routes: coop.clock.Now) or the app's clock "
        "(CoreState.clock) instead, or list the module in JUSTIFIED with its reason"
    )


def test_every_exception_is_still_needed() -> None:
    stale = [name for name in JUSTIFIED if not clock_reads((ROOT / name).read_text())]
    assert stale == [], "no longer reads the system clock: take it off JUSTIFIED"


def test_the_check_sees_every_way_of_reading_the_clock() -> None:
    source = (
        "from coop.db import utcnow\n"
        "import datetime, time\n"
        "a = utcnow()\n"
        "b = datetime.now(UTC)\n"
        "c = time.time()\n"
        "d = datetime.utcnow()\n"
        "e = clock()\n"
        "f = time.monotonic()\n"
    )
    assert clock_reads(source) == [3, 4, 5, 6]
