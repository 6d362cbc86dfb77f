"""The simulated drivers read their pay statements as the city runs, as a driver's app would.

Every few seconds a handful of drivers who have completed a trip fetch their open statement
(`GET /v1/drivers/me/statements?limit=1`), so the summary line shows what is on the statements;
at the end the busiest driver's statement is printed line by line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.simulator.agents import SimDriver, sleep_or_stop
from server.simulator.client import ServiceClient
from server.simulator.stats import CityStats, wrap_parts

READS_PER_ROUND = 5


async def read_statement(client: ServiceClient, driver: SimDriver) -> dict[str, Any] | None:
    """The driver's current (newest) statement summary, or None if it could not be read."""
    response = await client.call(
        "GET", "/v1/drivers/me/statements?limit=1", token=driver.account.token
    )
    if response is None or response.status_code != 200 or not response.json():
        return None
    summary: dict[str, Any] = response.json()[0]
    return summary


async def watch(
    client: ServiceClient,
    drivers: Sequence[SimDriver],
    stats: CityStats,
    stop: asyncio.Event,
    interval_s: float,
) -> None:
    """Round-robin over the drivers who have completed a trip, a few per round."""
    turn = 0
    while not await sleep_or_stop(stop, interval_s):
        working = [driver for driver in drivers if driver.trips_completed > 0]
        for index in range(min(READS_PER_ROUND, len(working))):
            driver = working[(turn + index) % len(working)]
            summary = await read_statement(client, driver)
            if summary is not None:
                stats.statement_read(
                    driver.account.id,
                    pay_total=Decimal(summary["pay_total"]),
                    top_up=Decimal(summary["top_up"]),
                )
        turn += READS_PER_ROUND


async def print_busiest(
    client: ServiceClient, drivers: Sequence[SimDriver], out: Callable[[str], None]
) -> None:
    """Prints the statement of the driver with the most completed trips, line by line."""
    if not drivers:
        return
    busiest = max(drivers, key=lambda driver: driver.trips_completed)
    if busiest.trips_completed == 0:
        return
    summary = await read_statement(client, busiest)
    if summary is None:
        return
    response = await client.call(
        "GET",
        f"/v1/drivers/me/statements/{summary['period_start']}",
        token=busiest.account.token,
    )
    if response is None or response.status_code != 200:
        return
    for line in statement_lines(response.json(), busiest.number):
        out(line)


def local_time(at: str, zone: str) -> str:
    """A wire timestamp (ISO 8601 with its offset) as the time of day in the statement's zone,
    the agreement's (the zone the driver reads their pay in); UTC's if the zone is unknown."""
    moment = datetime.fromisoformat(at)
    try:
        moment = moment.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        zone = "UTC"
    return moment.strftime("%H:%M:%S")


def statement_lines(statement: dict[str, Any], number: int) -> list[str]:
    """A pay statement for the terminal: lines of at most 80 columns, times in its zone."""
    zone = str(statement["timezone"])
    lines = [
        f"pay statement of simulated driver {number}, period from {statement['period_start']}",
        f"  ({statement['status']}, times in {zone}, amounts in {statement['currency']}):",
    ]
    for line in statement["lines"]:
        distance = "" if line["distance_m"] is None else f"{line['distance_m'] / 1000:.1f} km, "
        lines += wrap_parts(
            [
                f"ended {local_time(line['ended_at'], zone)}",
                f"engaged {line['engaged_seconds']} s",
                f"{distance}fare {line['fare_total']}",
                f"commission {line['commission']}",
                f"earnings {line['driver_earnings']}",
                f"fee {line['cancellation_fee']}",
                f"agreement v{line['agreement_version']}",
            ],
            first=f"  {line['kind']:<16} ",
        )
    lines += wrap_parts(
        [
            f"trips {statement['trips']}",
            f"fares {statement['fares_total']}",
            f"commission {statement['commission_total']}",
            f"earnings {statement['earnings_total']}",
            f"cancellation fees {statement['cancellation_fees_total']}",
            f"engaged {statement['engaged_seconds']} s",
            f"floor due {statement['floor_due']} (at {statement['engaged_floor_per_hour']}/h)",
            f"top-up {statement['top_up']}",
            f"pay {statement['pay_total']}",
        ],
        first="  totals: ",
    )
    return lines
