"""`make demo`: the service on this machine and a simulated city on it (docs/demo.md).

    python -m devtools.demo [--host H] [--port P] [city options]

Development tooling, not shipped: it starts the service as a child process and seeds demo
accounts. A simulated city against a service that already runs is `python -m server simulate`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from coop.settings import METER_TIME_SCALE_RANGE, get_settings
from devtools.demo_accounts import DemoAccount
from devtools.demo_reset import Closed, close_left_open
from devtools.processes import ServiceError, ServiceProcess
from server.simulator.cli import (
    add_city_arguments,
    city_config,
    configure_logging,
    run_city,
    with_base_url,
)
from server.simulator.config import SimulationConfig


def demo(args: argparse.Namespace) -> int:
    from server.migrate import upgrade

    settings = get_settings()
    configure_logging(args.verbose)
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    if settings.env == "production":
        # It closes every open trip of its database before it starts: never a real co-op's.
        print("demo: refused with COOP_ENV=production (it would close real trips)", file=sys.stderr)
        return 2
    try:
        config = demo_config(city_config(args, settings, admin_token=settings.admin_token))
    except ValueError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    print("demo: applying database migrations", flush=True)
    upgrade(settings.database_url)
    # Before the service starts: nothing else moves these trips while they are closed.
    print("demo: closing what a previous run left open, if anything", flush=True)
    closed = asyncio.run(close_previous_run(settings.database_url, config.service_time_scale))
    print(closed.line(), flush=True)
    service = ServiceProcess(
        host=host,
        port=port,
        log_path=settings.data_dir / "demo-service.log",
        env=demo_service_env(config, os.environ),
    )
    try:
        print(f"demo: starting the service on {service.base_url}", flush=True)
        service.start()
        service.wait_ready()
        base = service.base_url
        from devtools.demo_accounts import create_demo_accounts

        print("demo: opening the demo accounts", flush=True)
        accounts = create_demo_accounts(base, settings.admin_token)
        from devtools.demo_seed import seed_demo_history

        print("demo: the driver-members drive a first trip each (about 20 s)", flush=True)
        print(seed_demo_history(base, accounts), flush=True)
        from devtools.demo_ridecheck import start_ride_check

        print(
            "demo: a driver-member takes the demo rider and parks mid-trip (ride check)", flush=True
        )
        print(start_ride_check(base, accounts, settings.admin_token), flush=True)
        print("\n".join(banner(base, accounts, config, service.log_path)), flush=True)
        return run_city(with_base_url(config, base))
    except ServiceError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        print("demo: stopping the service", flush=True)
        service.stop()


async def close_previous_run(database_url: str, time_scale: float) -> Closed:
    """`demo_reset.close_left_open` on the demo's database, now."""
    from coop.db import create_engine, create_sessionmaker, utcnow

    engine = create_engine(database_url)
    try:
        return await close_left_open(
            sessionmaker=create_sessionmaker(engine), now=utcnow(), time_scale=time_scale
        )
    finally:
        await engine.dispose()


def banner(
    base: str, accounts: Sequence[DemoAccount], config: SimulationConfig, log_path: Path
) -> list[str]:
    """What the demo prints once it runs: where to go and whom to sign in as, in lines of at
    most 80 columns (a token is 43 characters: each has a line of its own)."""
    pages = (
        ("/ops", "the live map of the city (sign in first)"),
        ("/safety", "the operators' safety queue (an SOS waits)"),
        ("/ride", "the rider app: a new account, or the rider's"),
        ("/drive", "the driver app: a driver-member's token"),
        ("/", "the co-op's pages (English / français)"),
        ("/docs", "the HTTP API (OpenAPI)"),
        ("/asyncapi.json", "every WebSocket message (AsyncAPI)"),
        ("/v1/agreements/current", "the collective agreement in force"),
        ("/metrics", "Prometheus metrics"),
    )
    return [
        "",
        f"The co-op's service is running at {base}. Open:",
        *(f"  {path:<24}{what}" for path, what in pages),
        f"Sign in at {base}/signin with one of these tokens:",
        *(
            line
            for account in accounts
            for line in (f"  {account.role}: {account.name}", f"    {account.token}")
        ),
        "To ratify new terms alone: sign in as the committee member, draft and open a",
        "vote at /proposals closing in a few minutes, vote yes as the committee member",
        "and as one driver-member; the vote closes by itself at its closing time.",
        "Service log:",
        f"  {log_path}",
        f"Simulating {config.drivers} drivers and {config.rate_per_min:g} requests a minute",
        f"(speedup {config.speedup:g}). Ctrl-C stops everything.",
        "",
    ]


def demo_config(config: SimulationConfig) -> SimulationConfig:
    """The demo's city: the service it starts keeps the city's clock (`demo_service_env`)."""
    from dataclasses import replace

    low, high = METER_TIME_SCALE_RANGE
    if not low <= config.speedup <= high:
        raise ValueError(
            f"the demo's speedup must be between {low:g} and {high:g} "
            "(the service's COOP_METER_TIME_SCALE follows it)"
        )
    return replace(config, service_time_scale=config.speedup)


def demo_service_env(config: SimulationConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """The demo service's environment: the city runs `speedup` times faster than real time, and
    so does the service's clock (COOP_METER_TIME_SCALE), for the meter (fares pay the simulated
    minutes, so they are those of real trips of the same length) and for the position checks
    (the cars are believed at their simulated speeds). docs/demo.md, "The demo's clock"."""
    return {**environ, "COOP_METER_TIME_SCALE": f"{config.service_time_scale:g}"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.demo",
        description="Apply migrations, start the service on COOP_HOST:COOP_PORT and run a "
        "simulated city on it; Ctrl-C stops both.",
    )
    parser.add_argument("--host", help="default COOP_HOST")
    parser.add_argument("--port", type=int, help="default COOP_PORT")
    add_city_arguments(parser)
    return demo(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
