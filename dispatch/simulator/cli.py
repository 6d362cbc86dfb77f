"""`python -m dispatch simulate` (a city against any service) and `python -m dispatch demo`
(the service and a city on it, on this machine)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from dispatch.core.settings import METER_TIME_SCALE_RANGE, Settings, get_settings
from dispatch.simulator.city import SimulationError, simulate
from dispatch.simulator.config import SimulationConfig
from dispatch.simulator.movement import Point
from dispatch.simulator.service import ServiceError, ServiceProcess


def _point(text: str) -> Point:
    try:
        lat_text, lon_text = text.split(",")
        return Point(float(lat_text), float(lon_text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected LAT,LON such as 45.5017,-73.5673: {text!r}"
        ) from exc


def _add_city_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = SimulationConfig()
    city = parser.add_argument_group("the simulated city")
    city.add_argument("--drivers", type=int, default=defaults.drivers, help="drivers (default 50)")
    city.add_argument(
        "--rate",
        type=float,
        default=defaults.rate_per_min,
        help="rider requests per minute of wall-clock time, Poisson arrivals (default %(default)s)",
    )
    city.add_argument(
        "--speedup",
        type=float,
        default=defaults.speedup,
        help="simulated seconds per real second for driving and waiting (default %(default)s)",
    )
    city.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: Ctrl-C)"
    )
    city.add_argument("--max-requests", type=int, help="stop once this many requests have ended")
    city.add_argument("--seed", type=int, help="random seed, for a repeatable city")
    city.add_argument(
        "--center", type=_point, help="LAT,LON where the city is busiest (default: downtown)"
    )
    city.add_argument(
        "--spread-m", type=float, default=defaults.spread_m, help="sigma of the busy area, metres"
    )
    city.add_argument(
        "--trip-km",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=(defaults.trip_min_m / 1000, defaults.trip_max_m / 1000),
        help="straight-line trip length range (default %(default)s)",
    )
    city.add_argument("--decline-rate", type=float, default=defaults.decline_rate)
    city.add_argument("--cancel-rate", type=float, default=defaults.cancel_rate)
    city.add_argument("--rating-rate", type=float, default=defaults.rating_rate)
    city.add_argument(
        "--grid-bearing",
        type=float,
        default=defaults.grid_bearing_deg,
        help="bearing of the street grid in degrees (Montréal's default; 0 for north-south)",
    )
    city.add_argument(
        "--summary-every", type=float, default=defaults.summary_interval_s, help="seconds"
    )
    city.add_argument("--verbose", action="store_true", help="log every refusal and reconnect")


def _config(args: argparse.Namespace, settings: Settings, **fixed: Any) -> SimulationConfig:
    return SimulationConfig(
        service_area=settings.service_area,
        drivers=args.drivers,
        rate_per_min=args.rate,
        speedup=args.speedup,
        duration_s=args.duration,
        max_requests=args.max_requests,
        seed=args.seed,
        center=args.center,
        spread_m=args.spread_m,
        trip_min_m=args.trip_km[0] * 1000,
        trip_max_m=args.trip_km[1] * 1000,
        decline_rate=args.decline_rate,
        cancel_rate=args.cancel_rate,
        rating_rate=args.rating_rate,
        grid_bearing_deg=args.grid_bearing,
        summary_interval_s=args.summary_every,
        **fixed,
    )


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _run_city(config: SimulationConfig) -> int:
    try:
        asyncio.run(simulate(config))
    except SimulationError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 1
    return 0


def _simulate(args: argparse.Namespace) -> int:
    settings = get_settings()
    _configure_logging(args.verbose)
    try:
        config = _config(
            args,
            settings,
            base_url=args.base_url or f"http://{settings.host}:{settings.port}",
            admin_token=args.admin_token or settings.admin_token,
            service_time_scale=(
                settings.meter_time_scale
                if args.service_time_scale is None
                else args.service_time_scale
            ),
        )
    except ValueError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    print(
        f"simulating {config.drivers} drivers and {config.rate_per_min:g} requests a minute "
        f"against {config.base_url} (speedup {config.speedup:g}); Ctrl-C stops",
        flush=True,
    )
    return _run_city(config)


def _demo(args: argparse.Namespace) -> int:
    from dispatch.migrate import upgrade

    settings = get_settings()
    _configure_logging(args.verbose)
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    try:
        config = demo_config(_config(args, settings, admin_token=settings.admin_token))
    except ValueError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    print("demo: applying database migrations", flush=True)
    upgrade(settings.database_url)
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
        from dispatch.simulator.accounts import create_demo_accounts

        accounts = create_demo_accounts(base, settings.admin_token)
        from dispatch.simulator.seed import seed_demo_history

        print("demo: the driver-members drive a first trip each (about 20 s)", flush=True)
        print(seed_demo_history(base, accounts), flush=True)
        width = max(len(account.role) for account in accounts)
        print(
            "\n".join(
                [
                    "",
                    "The co-op's service is running. Open:",
                    f"  {base}/ops                      the live map of the city (sign in first)",
                    f"  {base}/                         the co-op's pages (English / français)",
                    f"  {base}/docs                     the HTTP API (OpenAPI)",
                    f"  {base}/asyncapi.json            every WebSocket message (AsyncAPI)",
                    f"  {base}/v1/agreements/current    the collective agreement in force",
                    f"  {base}/metrics                  Prometheus metrics",
                    f"Sign in at {base}/signin with one of these tokens:",
                    *(
                        f"  {account.role:<{width}}  {account.token}  {account.name}"
                        for account in accounts
                    ),
                    "To ratify new terms alone: sign in as the committee member, draft and open a",
                    "vote at /proposals closing in a few minutes, vote yes as the committee member",
                    "and as one driver-member; the vote closes by itself at its closing time.",
                    f"Service log: {service.log_path}",
                    f"Simulating {config.drivers} drivers and {config.rate_per_min:g} requests a "
                    f"minute (speedup {config.speedup:g}). Ctrl-C stops everything.",
                    "",
                ]
            ),
            flush=True,
        )
        return _run_city(_with_base_url(config, base))
    except ServiceError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        print("demo: stopping the service", flush=True)
        service.stop()


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


def _with_base_url(config: SimulationConfig, base_url: str) -> SimulationConfig:
    from dataclasses import replace

    return replace(config, base_url=base_url)


def add_commands(commands: Any) -> None:
    """Adds `simulate` and `demo` to the `python -m dispatch` subcommands."""
    simulate_parser: argparse.ArgumentParser = commands.add_parser(
        "simulate",
        help="run a simulated city against a running service over the real protocol",
        description="Drivers and riders speaking protocol v1 (docs/protocol.md) to the service "
        "at --base-url.",
    )
    simulate_parser.add_argument(
        "--base-url", help="the service (default http://COOP_HOST:COOP_PORT)"
    )
    simulate_parser.add_argument(
        "--admin-token", help="registers the simulated drivers (default COOP_ADMIN_TOKEN)"
    )
    simulate_parser.add_argument(
        "--service-time-scale",
        type=float,
        help="the service's COOP_METER_TIME_SCALE (default: this environment's, else 1); "
        "when it equals --speedup the cars drive at city speeds",
    )
    _add_city_arguments(simulate_parser)
    simulate_parser.set_defaults(handler=_simulate)

    demo_parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="apply migrations, start the service and run a simulated city on it",
        description="The service on COOP_HOST:COOP_PORT and a simulated city; Ctrl-C stops both.",
    )
    demo_parser.add_argument("--host", help="default COOP_HOST")
    demo_parser.add_argument("--port", type=int, help="default COOP_PORT")
    _add_city_arguments(demo_parser)
    demo_parser.set_defaults(handler=_demo)
