"""`python -m server simulate`: a simulated city against any running service, over the real
protocol. The demo (the service and a city on it, on this machine) is `devtools.demo`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from coop.settings import Settings, get_settings
from server.simulator.city import SimulationError, simulate
from server.simulator.config import SimulationConfig
from server.simulator.movement import Point


def _point(text: str) -> Point:
    try:
        lat_text, lon_text = text.split(",")
        return Point(float(lat_text), float(lon_text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected LAT,LON such as 45.5017,-73.5673: {text!r}"
        ) from exc


def add_city_arguments(parser: argparse.ArgumentParser) -> None:
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


def city_config(args: argparse.Namespace, settings: Settings, **fixed: Any) -> SimulationConfig:
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


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_city(config: SimulationConfig) -> int:
    try:
        asyncio.run(simulate(config))
    except SimulationError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 1
    return 0


def _simulate(args: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(args.verbose)
    try:
        config = city_config(
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
    return run_city(config)


def with_base_url(config: SimulationConfig, base_url: str) -> SimulationConfig:
    from dataclasses import replace

    return replace(config, base_url=base_url)


def add_commands(commands: Any) -> None:
    """Adds `simulate` to the `python -m server` subcommands."""
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
    add_city_arguments(simulate_parser)
    simulate_parser.set_defaults(handler=_simulate)
