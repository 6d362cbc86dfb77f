"""What must hold in the database after any load, checked against the record itself.

    python -m loadtests.invariants [--since 2026-11-22T14:00:00Z] [--database-url URL]

- every trip is in exactly one known status; a terminal one has the fields of its ending, an open
  one has none of them, and its timestamps come in the order of the state machine;
- no request is stale: a trip still `requested` after its matching deadline (plus slack for the
  sweep) should have ended `unfulfilled`; no driver's trip stays open for hours;
- no driver ever held two trips at once: the intervals from `assigned_at` to `ended_at` (open:
  to infinity) of one driver's trips never overlap;
- a trip with a driver has exactly one accepted offer, from that driver; no offer is still
  pending long after it expired;
- no trip is stuck: no open trip's driver has been without a socket (no sign of life) for
  longer than `stuck_s` (the driver grace period, plus slack);
- no offer was accepted twice, and every `undelivered` offer had no receipt.
Exit status 0 when everything holds, 1 otherwise (each violation is listed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from coop.db import create_engine

TERMINAL = ("completed", "cancelled", "unfulfilled")
SHOWN_PER_CHECK = 10


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    sql: str  # selects one row per violation; its first column names the trip or offer


CHECKS: tuple[Check, ...] = (
    Check(
        "terminal_fields",
        "a terminal trip has the fields of its ending; an open trip has none",
        """
        SELECT id, status FROM trip
        WHERE requested_at >= CAST(:since AS timestamptz) AND NOT (
            CASE status::text
            WHEN 'completed' THEN driver_id IS NOT NULL AND assigned_at IS NOT NULL
                AND arrived_at IS NOT NULL AND started_at IS NOT NULL AND ended_at IS NOT NULL
                AND fare IS NOT NULL AND fare_total IS NOT NULL
            WHEN 'cancelled' THEN ended_at IS NOT NULL AND cancelled_by IS NOT NULL
                AND fare IS NULL
            WHEN 'unfulfilled' THEN ended_at IS NOT NULL AND assigned_at IS NULL
                AND fare IS NULL
            WHEN 'requested' THEN ended_at IS NULL AND assigned_at IS NULL
            WHEN 'assigned' THEN ended_at IS NULL AND assigned_at IS NOT NULL
                AND arrived_at IS NULL
            WHEN 'arrived' THEN ended_at IS NULL AND arrived_at IS NOT NULL
                AND started_at IS NULL
            WHEN 'in_progress' THEN ended_at IS NULL AND started_at IS NOT NULL
            ELSE false
            END
        )
        """,
    ),
    Check(
        "time_order",
        "requested <= assigned <= arrived <= started <= ended",
        """
        SELECT id, status FROM trip
        WHERE requested_at >= CAST(:since AS timestamptz) AND (
            assigned_at < requested_at
            OR arrived_at < assigned_at OR (arrived_at IS NOT NULL AND assigned_at IS NULL)
            OR started_at < arrived_at OR (started_at IS NOT NULL AND arrived_at IS NULL)
            OR ended_at < coalesce(started_at, arrived_at, assigned_at, requested_at)
        )
        """,
    ),
    Check(
        "stale_request",
        "no trip is still requested well past its matching deadline",
        """
        SELECT id, matching_deadline_at FROM trip
        WHERE requested_at >= CAST(:since AS timestamptz) AND status = 'requested'
          AND matching_deadline_at < CAST(:now AS timestamptz) - make_interval(secs => :slack_s)
        """,
    ),
    Check(
        "stale_open_trip",
        "no driver's trip stays open for hours",
        """
        SELECT id, status FROM trip
        WHERE requested_at >= CAST(:since AS timestamptz)
          AND status IN ('assigned', 'arrived', 'in_progress')
          AND assigned_at < CAST(:now AS timestamptz) - make_interval(secs => :max_open_s)
        """,
    ),
    Check(
        "driver_overlap",
        "no driver held two trips at once",
        """
        SELECT id, driver_id FROM (
            SELECT id, driver_id, assigned_at,
                   max(coalesce(ended_at, 'infinity'::timestamptz)) OVER (
                       PARTITION BY driver_id ORDER BY assigned_at, id
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                   ) AS earlier_end
            FROM trip
            WHERE driver_id IS NOT NULL AND assigned_at IS NOT NULL
        ) intervals
        WHERE earlier_end > assigned_at
        """,
    ),
    Check(
        "accepted_offer",
        "a trip with a driver has exactly one accepted offer, the driver's; others none",
        """
        SELECT t.id, t.status FROM trip t
        LEFT JOIN LATERAL (
            SELECT count(*) AS accepted,
                   count(*) FILTER (WHERE o.driver_id = t.driver_id) AS by_driver
            FROM trip_offer o WHERE o.trip_id = t.id AND o.status = 'accepted'
        ) offers ON true
        WHERE t.requested_at >= CAST(:since AS timestamptz) AND CASE
            WHEN t.assigned_at IS NOT NULL THEN offers.accepted <> 1 OR offers.by_driver <> 1
            ELSE offers.accepted <> 0
        END
        """,
    ),
    Check(
        "stuck_trip",
        "no open trip's driver has been without a socket for longer than the grace allows",
        """
        SELECT t.id, t.status FROM trip t
        LEFT JOIN location_driver_position p ON p.driver_id = t.driver_id
        WHERE t.requested_at >= CAST(:since AS timestamptz)
          AND t.status IN ('assigned', 'arrived', 'in_progress')
          AND coalesce(p.last_seen_at, t.assigned_at)
              < CAST(:now AS timestamptz) - make_interval(secs => :stuck_s)
        """,
    ),
    Check(
        "offer_accepted_twice",
        "no trip has two accepted offers; no undelivered offer has a receipt",
        """
        SELECT trip_id, count(*) FROM trip_offer
        WHERE created_at >= CAST(:since AS timestamptz) AND status = 'accepted'
        GROUP BY trip_id HAVING count(*) > 1
        UNION ALL
        SELECT trip_id, 1 FROM trip_offer
        WHERE created_at >= CAST(:since AS timestamptz) AND status = 'undelivered'
          AND delivered_at IS NOT NULL
        """,
    ),
    Check(
        "stale_offer",
        "no offer is still pending well after it expired",
        """
        SELECT o.id, o.trip_id FROM trip_offer o
        WHERE o.created_at >= CAST(:since AS timestamptz) AND o.status = 'pending'
          AND o.expires_at < CAST(:now AS timestamptz) - make_interval(secs => :slack_s)
        """,
    ),
)


@dataclass
class Report:
    trips: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    violations: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def lines(self) -> list[str]:
        statuses = ", ".join(
            f"{status} {count}" for status, count in sorted(self.by_status.items())
        )
        out = [f"trips checked: {self.trips} ({statuses or 'none'})"]
        for check in CHECKS:
            found = self.violations.get(check.name, [])
            mark = "ok  " if not found else "FAIL"
            out.append(f"  {mark} {check.name}: {check.description}")
            out.extend(f"         {row}" for row in found[:SHOWN_PER_CHECK])
            if len(found) > SHOWN_PER_CHECK:
                out.append(f"         ... and {len(found) - SHOWN_PER_CHECK} more")
        out.append("invariants hold" if self.ok else "INVARIANTS VIOLATED")
        return out


async def check(
    connection: AsyncConnection,
    *,
    since: datetime | None = None,
    now: datetime | None = None,
    slack_s: float = 60.0,
    max_open_s: float = 3 * 3600.0,
    stuck_s: float = 300.0,
) -> Report:
    """Runs every check on trips requested since `since` (all trips by default)."""
    params = {
        "since": since or datetime(1970, 1, 1, tzinfo=UTC),
        "now": now or datetime.now(UTC),
        "slack_s": slack_s,
        "max_open_s": max_open_s,
        "stuck_s": stuck_s,
    }
    report = Report()
    counts = await connection.execute(
        text(
            "SELECT status::text, count(*) FROM trip "
            "WHERE requested_at >= CAST(:since AS timestamptz) GROUP BY 1"
        ),
        {"since": params["since"]},
    )
    report.by_status = {str(status): int(count) for status, count in counts}
    report.trips = sum(report.by_status.values())
    for item in CHECKS:
        used = {name: value for name, value in params.items() if f":{name}" in item.sql}
        rows = await connection.execute(text(item.sql), used)
        report.violations[item.name] = [" ".join(str(value) for value in row) for row in rows]
    return report


async def run(database_url: str, *, since: datetime | None, slack_s: float) -> Report:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            return await check(connection, since=since, slack_s=slack_s)
    finally:
        await engine.dispose()


def _timestamp(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    from coop.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m loadtests.invariants", description=__doc__)
    parser.add_argument("--database-url", help="default COOP_DATABASE_URL")
    parser.add_argument("--since", type=_timestamp, help="only trips requested since (RFC 3339)")
    parser.add_argument(
        "--slack-s", type=float, default=60.0, help="grace past a deadline for the sweeps"
    )
    args = parser.parse_args(argv)
    database_url = args.database_url or get_settings().database_url
    report = asyncio.run(run(database_url, since=args.since, slack_s=args.slack_s))
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
