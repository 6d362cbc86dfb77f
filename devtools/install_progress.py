"""Runs a pip install and says what it is doing while it does (the first `make demo` or
`make test` installs about 125 locked packages: a minute or more in which `pip -q` prints
nothing, and a person cannot tell a slow install from a hung one).

    python devtools/install_progress.py -- python -m pip install ...

Run by the virtualenv's Python before the project is installed: standard library only. Prints a
line per 25 packages fetched, then one every `HEARTBEAT_S` while pip unpacks them; pip's own
output is shown only if it fails.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence

HEARTBEAT_S = 10.0
FETCHED_EVERY = 25


class Progress:
    """Turns pip's output lines into a few lines for a person (pure but for `say`)."""

    def __init__(self, say: Callable[[str], None], total: int | None = None) -> None:
        self.say = say
        self.total = total
        self.fetched = 0
        self.installing = False

    def line(self, text: str) -> None:
        if text.startswith("Collecting "):
            self.fetched += 1
            if self.fetched % FETCHED_EVERY == 0:
                of = f" of {self.total}" if self.total else ""
                self.say(f"  {self.fetched}{of} packages fetched")
        elif text.startswith("Installing collected packages:") and not self.installing:
            self.installing = True
            count = text.count(",") + 1
            self.say(f"  unpacking {count} packages (the longest step)")


def locked_packages(lines: Iterable[str]) -> int:
    """How many packages a requirements lock pins (its lines naming `name==version`)."""
    return sum(1 for line in lines if "==" in line and not line.startswith((" ", "#")))


def run(command: Sequence[str], *, total: int | None = None) -> int:
    def say(text: str) -> None:
        print(text, flush=True)

    progress = Progress(say, total)
    started = time.monotonic()
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(HEARTBEAT_S):
            say(f"  still installing ({time.monotonic() - started:.0f} s)")

    beating = threading.Thread(target=heartbeat, daemon=True)
    beating.start()
    output: list[str] = []
    with subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as pip:
        assert pip.stdout is not None
        for raw in pip.stdout:
            output.append(raw)
            progress.line(raw.strip())
        code = pip.wait()
    done.set()
    beating.join()
    if code != 0:
        sys.stdout.write("".join(output))
        say(f"the install failed (exit {code}): pip's output is above")
    else:
        say(f"  installed in {time.monotonic() - started:.0f} s")
    return code


def main(argv: Sequence[str]) -> int:
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = list(argv).index("--")
    options, command = list(argv[:split]), list(argv[split + 1 :])
    total = None
    if "--lock" in options:
        with open(options[options.index("--lock") + 1], encoding="utf-8") as lock:
            total = locked_packages(lock)
    return run(command, total=total)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
