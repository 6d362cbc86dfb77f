"""`make load`: start the service on this machine (as `make demo` does, without the simulated
city), run the Locust scenarios headless against it for a bounded time, print Locust's summary,
then check the database invariants on the trips the run made.

    python -m loadtests.run [--users 60] [--spawn-rate 10] [--time 60s] [--port 8000]

Against a remote deployment, run Locust and the invariants yourself (docs/loadtest.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from coop.settings import get_settings
from devtools.processes import ServiceError, ServiceProcess

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def locust_command(
    *, host: str, users: int, spawn_rate: float, run_time: str, stop_timeout_s: int = 10
) -> list[str]:
    """Locust, headless, printing only its final summary."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--host",
        host,
        "--users",
        str(users),
        "--spawn-rate",
        str(spawn_rate),
        "--run-time",
        run_time,
        "--stop-timeout",
        str(stop_timeout_s),
    ]


def main(argv: list[str] | None = None) -> int:
    from loadtests import invariants
    from server.migrate import upgrade

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m loadtests.run", description=__doc__)
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--spawn-rate", type=float, default=10.0)
    parser.add_argument("--time", default="60s", help="Locust run time, e.g. 60s, 5m")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args(argv)

    print("load: applying database migrations", flush=True)
    upgrade(settings.database_url)
    service = ServiceProcess(
        host=args.host, port=args.port, log_path=settings.data_dir / "load-service.log"
    )
    since = datetime.now(UTC)
    try:
        service.start()
        service.wait_ready()
        print(
            f"load: {args.users} users against {service.base_url} for {args.time} "
            f"(service log: {service.log_path})",
            flush=True,
        )
        env = dict(os.environ, COOP_ADMIN_TOKEN=settings.admin_token)
        command = locust_command(
            host=service.base_url,
            users=args.users,
            spawn_rate=args.spawn_rate,
            run_time=args.time,
        )
        locust_code = subprocess.run(command, env=env, check=False).returncode
        # Checked while the service still runs, so its sweeps have had their chance.
        print("\nload: checking the database invariants", flush=True)
        report = asyncio.run(invariants.run(settings.database_url, since=since, slack_s=60.0))
        print("\n".join(report.lines()), flush=True)
    except ServiceError as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        service.stop()
    if locust_code != 0:
        print(f"load: Locust exited with {locust_code} (failed requests are listed above)")
    return 0 if report.ok and locust_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
