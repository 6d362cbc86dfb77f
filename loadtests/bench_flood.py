"""Flood benchmark: a genuine request 50 m from an available driver, with thousands of open
requests elsewhere in the city. Does its offer come in the first batch, and what does a batch
cost?

Against the private PostgreSQL and Redis of COOP_DATA_DIR (bench database `<db>_bench`), the
service's own `Matcher.run_batch` in this process (candidates in PostGIS, costs, OR-Tools, the
offers written and pushed through Redis). The city: `--drivers` available drivers spread
uniformly over the service area, `--flood` open requests spread uniformly too (none within
500 m of the genuine one, all older than it), and the genuine request, newest of all, 50 m from
one more available driver.

Compared in the same run, on the same data:

- `oldest 2000 (before)`: the matcher as it was, the 2,000 oldest open requests each batch;
- `every request, requests' side`: every open request, each request's K nearest drivers;
- `every request, drivers' side`: every open request, each driver's K nearest requests;
- `every request, smaller side (shipped)`: every open request, from whichever side is smaller;
- `no flood`: the shipped matcher with the genuine request alone (the floor).

For each: the median (and max) time of one batch from a clean state (no offers), and how many
batches pass before the genuine request is offered, running successive batches one
`batch_interval_ms` apart (simulated clock; nobody answers offers, so they expire after
`offer_timeout_s` as in a city under attack). The request's wait is that many intervals plus one
batch.

    python -m loadtests.bench_flood                        # 1,000 drivers, 5,000 requests
    python -m loadtests.bench_flood --drivers 2000 --flood 10000 --repeats 3
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import service as bargaining_service
from bargaining.terms import DispatchTerms
from coop.db import create_engine, create_sessionmaker
from coop.geo import EARTH_RADIUS_M, haversine_m
from coop.redis_client import create_redis
from dispatch.matching.candidates import Search, find, present_drivers
from dispatch.matching.matcher import Matcher
from loadtests.benchenv import BenchEnv, insert_accounts, positions_in_area
from loadtests.report import log, machine_line, median
from loadtests.runtime import run_bench

OLD_CAP = 2000
GENUINE_OFFSET_M = 50.0
CLEAR_RADIUS_M = 500.0
MAX_BATCHES = 12  # 24 s at a 2 s interval: within the drivers' 25 s grace period

_OLDEST_N = text(
    """
    SELECT t.id
    FROM trip t
    WHERE t.region = :region AND t.status = 'requested' AND t.matching_deadline_at > :now
      AND NOT EXISTS (
          SELECT 1 FROM trip_offer o WHERE o.trip_id = t.id AND o.status = 'pending'
      )
    ORDER BY t.requested_at, t.id
    LIMIT :limit
    """
)


class OldestN(Matcher):
    """The matcher before: only the `OLD_CAP` oldest open requests of each batch."""

    async def search(
        self,
        *,
        session: AsyncSession,
        now: datetime,
        terms: DispatchTerms,
        max_requests: int | None = None,
    ) -> Search:
        rows = await session.execute(
            _OLDEST_N, {"region": self.region, "now": now, "limit": OLD_CAP}
        )
        trip_ids = [row[0] for row in rows]
        present_after = now - timedelta(seconds=self.settings.driver_grace_s)
        candidates = await find(
            session=session,
            trip_ids=trip_ids,
            now=now,
            present_after=present_after,
            max_distance_m=terms.max_pickup_distance_m,
            k=self.settings.matcher_candidates_k,
            qualified=self.qualified_on(now),
        )
        drivers = await present_drivers(session=session, present_after=present_after)
        return Search(len(trip_ids), drivers, "requests", candidates)


@dataclass
class Result:
    name: str
    batch_ms: list[float] = field(default_factory=list)
    search_ms: list[float] = field(default_factory=list)
    solve_ms: list[float] = field(default_factory=list)
    write_ms: list[float] = field(default_factory=list)
    push_ms: list[float] = field(default_factory=list)
    considered: int = 0
    candidates: int = 0
    offers: int = 0
    side: str = ""
    first_batch: bool = False
    batches_to_offer: int | None = None  # 1 = the first batch


def north_of(lat: float, lon: float, metres: float) -> tuple[float, float]:
    return lat + metres / (EARTH_RADIUS_M * 3.141592653589793 / 180), lon


async def build_city(env: BenchEnv, drivers: int, flood: int, seed: int) -> uuid.UUID:
    """Writes the drivers' positions and the open requests; answers the genuine trip's id."""
    driver_members, rider_members = await insert_accounts(
        env, drivers=drivers + 1, riders=flood + 1
    )
    driver_points = positions_in_area(drivers, seed)
    rng = random.Random(seed + 1)
    genuine_driver_at = positions_in_area(1, seed + 2)[0]
    g_lat, g_lon = genuine_driver_at.lat, genuine_driver_at.lon
    pickup_lat, pickup_lon = north_of(g_lat, g_lon, GENUINE_OFFSET_M)
    flood_points = [
        p
        for p in positions_in_area(flood * 2, seed + 3)
        if haversine_m(p.lat, p.lon, pickup_lat, pickup_lon) > CLEAR_RADIUS_M
    ][:flood]
    now = datetime.now(UTC)
    engine = create_engine(env.database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as connection:
            positions = [
                (m.id, p.lat, p.lon) for m, p in zip(driver_members, driver_points, strict=False)
            ]
            positions.append((driver_members[-1].id, g_lat, g_lon))
            await connection.execute(
                text(
                    """
                    INSERT INTO location_driver_position
                        (driver_id, position, reported_at, available, available_since, last_seen_at)
                    SELECT u.id, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326)::geography,
                           CAST(:now AS timestamptz), true,
                           CAST(:now AS timestamptz) - random() * interval '30 minutes',
                           CAST(:now AS timestamptz)
                    FROM unnest(CAST(:ids AS uuid[]), CAST(:lats AS float8[]),
                                CAST(:lons AS float8[])) AS u(id, lat, lon)
                    """
                ),
                {
                    "ids": [p[0] for p in positions],
                    "lats": [p[1] for p in positions],
                    "lons": [p[2] for p in positions],
                    "now": now,
                },
            )
            trips = [
                (uuid.uuid4(), m.id, p.lat, p.lon, now - timedelta(seconds=120 - i * 0.01))
                for i, (m, p) in enumerate(zip(rider_members, flood_points, strict=False))
            ]
            genuine_id = uuid.uuid4()
            trips.append((genuine_id, rider_members[-1].id, pickup_lat, pickup_lon, now))
            rng.shuffle(trips)  # the table's physical order says nothing
            await connection.execute(
                text(
                    """
                    INSERT INTO trip (id, rider_id, status, region, pickup, dropoff,
                                      wheelchair_accessible, service_class, agreement_version,
                                      currency, quote, requested_at, matching_deadline_at)
                    SELECT u.id, u.rider_id, 'requested', :region,
                           ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326)::geography,
                           ST_SetSRID(ST_MakePoint(u.lon, u.lat + 0.01), 4326)::geography,
                           false, 'standard', 1, 'CAD', '{"total": "12.00"}'::jsonb,
                           u.requested_at, CAST(:now AS timestamptz) + interval '1 hour'
                    FROM unnest(CAST(:ids AS uuid[]), CAST(:riders AS uuid[]),
                                CAST(:lats AS float8[]), CAST(:lons AS float8[]),
                                CAST(:at AS timestamptz[]))
                         AS u(id, rider_id, lat, lon, requested_at)
                    """
                ),
                {
                    "ids": [t[0] for t in trips],
                    "riders": [t[1] for t in trips],
                    "lats": [t[2] for t in trips],
                    "lons": [t[3] for t in trips],
                    "at": [t[4] for t in trips],
                    "region": env.settings.matcher_region,
                    "now": now,
                },
            )
        async with engine.connect() as connection:
            await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return genuine_id


async def measure(
    env: BenchEnv, name: str, matcher: Matcher, genuine: uuid.UUID, repeats: int
) -> Result:
    result = Result(name)

    async def reset() -> None:
        async with matcher.sessionmaker() as session:
            await session.execute(text("DELETE FROM trip_offer"))
            await session.execute(
                text("UPDATE location_driver_position SET last_seen_at = now(), available = true")
            )
            await session.commit()

    for _ in range(repeats):
        await reset()
        started = time.perf_counter()
        report = await matcher.run_batch()
        result.batch_ms.append((time.perf_counter() - started) * 1000)
        result.search_ms.append(report.search_ms)
        result.solve_ms.append(report.solve_ms)
        result.write_ms.append(report.write_ms)
        result.push_ms.append(report.push_ms)
        result.considered = report.requests
        result.candidates = report.candidates
        result.offers = len(report.offers)
        result.side = report.side or ""
        result.first_batch = any(offer.trip_id == genuine for offer in report.offers)
    await reset()
    t0 = datetime.now(UTC)
    interval = timedelta(seconds=2)
    for batch in range(MAX_BATCHES):
        report = await matcher.run_batch(now=t0 + batch * interval)
        if any(offer.trip_id == genuine for offer in report.offers):
            result.batches_to_offer = batch + 1
            break
    log(
        f"{name}: median batch {median(result.batch_ms):.0f} ms, {result.considered} requests "
        f"considered, offered in batch {result.batches_to_offer}"
    )
    return result


async def run(args: argparse.Namespace) -> int:
    env = await BenchEnv.create()
    log(f"city: {args.drivers} drivers, {args.flood} open requests elsewhere, 1 genuine")
    genuine = await build_city(env, args.drivers, args.flood, args.seed)
    settings = env.settings.model_copy(
        update={"database_url": env.database_url, "redis_url": env.redis_url}
    )
    engine = create_engine(env.database_url, pool_size=2, max_overflow=0)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        await bargaining_service.install_founding(session=session)
    redis = create_redis(env.redis_url)
    results: list[Result] = []
    try:

        def make(kind: type[Matcher] = Matcher, side: str | None = None) -> Matcher:
            matcher = kind(engine=engine, sessionmaker=sessionmaker, redis=redis, settings=settings)
            matcher.search_side = side  # type: ignore[assignment]
            return matcher

        variants: list[tuple[str, Matcher]] = [
            (f"oldest {OLD_CAP} (before)", make(OldestN)),
            ("every request, requests' side", make(side="requests")),
            ("every request, drivers' side", make(side="drivers")),
            ("every request, smaller side (shipped)", make()),
        ]
        for name, matcher in variants:
            results.append(await measure(env, name, matcher, genuine, args.repeats))
        async with sessionmaker() as session:
            await session.execute(
                text("UPDATE trip SET status = 'cancelled' WHERE id <> :id"), {"id": genuine}
            )
            await session.commit()
        results.append(await measure(env, "no flood (floor)", make(), genuine, args.repeats))
    finally:
        await redis.aclose()
        await engine.dispose()
    print(report(results, args))
    return 0


def report(results: list[Result], args: argparse.Namespace) -> str:
    lines = [
        f"Flood benchmark: {args.drivers} available drivers, {args.flood} open requests elsewhere "
        f"(older), 1 genuine request {GENUINE_OFFSET_M:.0f} m from an available driver; "
        f"K = 8, {args.repeats} batches each from a clean state",
        machine_line(),
        "",
        "| matcher | requests considered | search side | candidate edges | offers "
        "| batch median (max) | search / solve / write / push (medians) "
        "| genuine offered in the first batch | batches until its offer |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.considered:,} | {r.side} | {r.candidates:,} | {r.offers:,} | "
            f"{median(r.batch_ms):,.0f} ms ({max(r.batch_ms):,.0f}) | "
            f"{median(r.search_ms):,.0f} / {median(r.solve_ms):,.0f} / "
            f"{median(r.write_ms):,.0f} / {median(r.push_ms):,.0f} ms | "
            f"{'yes' if r.first_batch else 'no'} | "
            f"{r.batches_to_offer if r.batches_to_offer else f'none in {MAX_BATCHES}'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench_flood", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--drivers", type=int, default=1000)
    parser.add_argument("--flood", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    return run_bench(run(args))


if __name__ == "__main__":
    sys.exit(main())
