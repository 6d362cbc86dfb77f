"""The matcher: every `dispatch.batch_interval_ms`, open requests x available drivers -> offers.

One matcher leads per region across all workers and restarts: leadership is a PostgreSQL
advisory lock (`pg_try_advisory_lock`) held on a dedicated connection for as long as it leads; a
worker that dies drops its connection and with it the lock, and another takes over.

Each batch (`run_batch`, which tests call directly):
1. sweeps: offers past `expires_at` expire (their trips return to matching) and requests past
   their matching deadline end `unfulfilled`, so nothing a dead worker left is stranded;
2. loads every open request of the region without an open offer (no cap: a flood of requests
   elsewhere cannot keep a request with a driver nearby from its offer);
3. finds candidates with PostGIS (`dispatch.matching.candidates`), searching from the smaller
   side: each request's nearest drivers, or each driver's nearest requests;
4. costs each pairing (`dispatch.matching.costs`: pickup ETA minus the fairness credit);
5. solves the min-cost assignment with OR-Tools off the event loop
   (`dispatch.matching.assignment`);
6. writes the offers in one conditional statement and pushes them to the drivers.
The dispatch terms (interval, timeout, radius, fairness weight) are those of the agreement in
force at the time of the batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from bargaining import service as bargaining_service
from bargaining.exceptions import NoAgreementInForce
from bargaining.terms import DispatchTerms
from dispatch.core.db import utcnow
from dispatch.core.redis_client import Redis
from dispatch.core.settings import Settings
from dispatch.matching import assignment, costs
from dispatch.matching.candidates import Candidate, Search, Side, find_all
from dispatch.trips import push
from dispatch.trips import service as trips_service
from dispatch.trips.models import Offer, Trip
from dispatch.trips.states import DRIVER_OPEN_LIST, OFFER_OPEN_SQL, WAITING_SQL

logger = logging.getLogger("coop.matcher")

LEADERSHIP_RETRY_S = 2.0


def region_lock_key(region: str) -> int:
    """The advisory-lock key of a region's matcher: a stable signed 64-bit number."""
    digest = hashlib.sha256(f"coop.matcher:{region}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def explain(candidate: Candidate, pickup_eta_s: int) -> str:
    """The offer's `why`, true to how the wait was counted."""
    if candidate.since_last_trip:
        return costs.explain(
            pickup_distance_m=candidate.distance_m,
            pickup_eta_s=pickup_eta_s,
            idle_s=candidate.idle_s,
        )
    # No trip since coming on duty: the wait counts from then, and the sentence says so.
    where = costs.explain(
        pickup_distance_m=candidate.distance_m, pickup_eta_s=pickup_eta_s, idle_s=None
    ).split(";", 1)[0]
    minutes = round(candidate.idle_s / 60)
    if minutes < 1:
        return f"{where}; you came on duty under a minute ago"
    return f"{where}; waiting {minutes} min since you came on duty"


@dataclass(frozen=True)
class OfferDraft:
    trip_id: uuid.UUID
    driver_id: uuid.UUID
    pickup_distance_m: int
    pickup_eta_s: int
    idle_s: int
    cost: int
    why: str


@dataclass
class BatchReport:
    """What one batch did (logged, and read by tests)."""

    expired_offers: int = 0
    unfulfilled: int = 0
    requests: int = 0
    candidates: int = 0
    # Which side the K-nearest search ran from.
    side: Side | None = None
    offers: list[Offer] = field(default_factory=list)
    interval_ms: int | None = None
    # Where the batch's time went, in milliseconds (the benchmarks read them).
    search_ms: float = 0.0
    solve_ms: float = 0.0
    write_ms: float = 0.0
    push_ms: float = 0.0


def plan(candidates: list[Candidate], terms: DispatchTerms) -> tuple[list[OfferDraft], int]:
    """The edges of the batch and their costs, solved: one draft per assigned request.

    Pure apart from the solver; answers (drafts, number of edges)."""
    trips = sorted({c.trip_id for c in candidates})
    drivers = sorted({c.driver_id for c in candidates})
    trip_index = {trip_id: i for i, trip_id in enumerate(trips)}
    driver_index = {driver_id: i for i, driver_id in enumerate(drivers)}
    edges: list[assignment.Edge] = []
    by_edge: dict[tuple[int, int], tuple[Candidate, int, int]] = {}
    for candidate in candidates:
        eta = costs.pickup_eta_s(candidate.distance_m)
        cost = costs.edge_cost(
            pickup_eta_s=eta, idle_s=candidate.idle_s, fairness_weight=terms.fairness_weight
        )
        key = (trip_index[candidate.trip_id], driver_index[candidate.driver_id])
        edges.append(assignment.Edge(request=key[0], driver=key[1], cost=cost))
        by_edge[key] = (candidate, eta, cost)
    chosen = assignment.solve(len(trips), len(drivers), edges)
    drafts = []
    for request_i, driver_i in sorted(chosen.items()):
        candidate, eta, cost = by_edge[(request_i, driver_i)]
        drafts.append(
            OfferDraft(
                trip_id=candidate.trip_id,
                driver_id=candidate.driver_id,
                pickup_distance_m=round(candidate.distance_m),
                pickup_eta_s=eta,
                idle_s=round(candidate.idle_s),
                cost=cost,
                why=explain(candidate, eta),
            )
        )
    return drafts, len(edges)


_CREATE_OFFERS = text(
    f"""
    INSERT INTO trip_offer (id, trip_id, driver_id, status, created_at, expires_at,
                            pickup_distance_m, pickup_eta_s, idle_s, cost, why)
    SELECT u.id, u.trip_id, u.driver_id, {OFFER_OPEN_SQL}, :now, :expires_at,
           u.pickup_distance_m, u.pickup_eta_s, u.idle_s, u.cost, u.why
    FROM unnest(
        CAST(:ids AS uuid[]), CAST(:trip_ids AS uuid[]), CAST(:driver_ids AS uuid[]),
        CAST(:distances AS int[]), CAST(:etas AS int[]), CAST(:idles AS int[]),
        CAST(:costs AS int[]), CAST(:whys AS varchar[])
    ) AS u(id, trip_id, driver_id, pickup_distance_m, pickup_eta_s, idle_s, cost, why)
    JOIN trip t ON t.id = u.trip_id AND t.status = {WAITING_SQL}
    JOIN location_driver_position p ON p.driver_id = u.driver_id AND p.available
    WHERE NOT EXISTS (
        SELECT 1 FROM trip o
        WHERE o.driver_id = u.driver_id AND o.status IN {DRIVER_OPEN_LIST}
    )
    ON CONFLICT DO NOTHING
    RETURNING id
    """
)


async def create_offers(
    *, session: AsyncSession, drafts: list[OfferDraft], now: datetime, timeout_s: int
) -> list[tuple[Offer, Trip]]:
    """Writes the batch's offers in one statement, each only if its trip still waits and its
    driver is still free (a concurrent batch or accept may have won); the unique indexes on
    pending offers skip the rest. Commits once."""
    if not drafts:
        return []
    rows = await session.execute(
        _CREATE_OFFERS,
        {
            "now": now,
            "expires_at": now + timedelta(seconds=timeout_s),
            "ids": [uuid.uuid4() for _ in drafts],
            "trip_ids": [d.trip_id for d in drafts],
            "driver_ids": [d.driver_id for d in drafts],
            "distances": [d.pickup_distance_m for d in drafts],
            "etas": [d.pickup_eta_s for d in drafts],
            "idles": [d.idle_s for d in drafts],
            "costs": [d.cost for d in drafts],
            "whys": [d.why for d in drafts],
        },
    )
    ids = [row[0] for row in rows]
    await session.commit()
    if not ids:
        return []
    pairs = await session.execute(
        select(Offer, Trip).join(Trip, Trip.id == Offer.trip_id).where(Offer.id.in_(ids))
    )
    return [(row[0], row[1]) for row in pairs.all()]


class Matcher:
    """The region's matcher: `run_batch` once, or `run` to lead and batch until cancelled."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis,
        settings: Settings,
    ) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.settings = settings
        self.region = settings.matcher_region
        self.leading = False
        self.leadership_tries = 0  # times it asked for the region's lock
        # None: search from the smaller side each batch; tests and the benchmark may fix it.
        self.search_side: Side | None = None
        self.batches = 0
        self.offers_made = 0

    async def run_batch(self, *, now: datetime | None = None) -> BatchReport:
        """One batch: sweeps, candidates, costs, solve, offers, pushes."""
        now = now or utcnow()
        report = BatchReport()
        self.batches += 1
        async with self.sessionmaker() as session:
            await self._sweep(session, now, report)
            try:
                agreement = await bargaining_service.in_force(session=session, at=now)
            except NoAgreementInForce:
                # Nothing can be priced (the co-op has not voted one in yet): a state, not a
                # fault. Any other failure is the batch's error, logged by `_batches`.
                logger.warning("no agreement in force: nothing is matched")
                return report
            terms = agreement.terms.dispatch
            report.interval_ms = terms.batch_interval_ms
            searching = time.perf_counter()
            search = await self.search(session=session, now=now, terms=terms)
            await session.commit()  # nothing is held open while the solver runs
            report.search_ms = (time.perf_counter() - searching) * 1000
            candidates = search.candidates
            report.requests = search.requests
            report.side = search.side
            report.candidates = len(candidates)
            if not candidates:
                return report
            solving = time.perf_counter()
            drafts, _ = await asyncio.to_thread(plan, candidates, terms)
            writing = time.perf_counter()
            report.solve_ms = (writing - solving) * 1000
            made = await create_offers(
                session=session, drafts=drafts, now=now, timeout_s=terms.offer_timeout_s
            )
            report.write_ms = (time.perf_counter() - writing) * 1000
        pushing = time.perf_counter()
        await push.offered_all(self.redis, made)
        report.push_ms = (time.perf_counter() - pushing) * 1000
        report.offers = [offer for offer, _ in made]
        self.offers_made += len(made)
        return report

    async def search(self, *, session: AsyncSession, now: datetime, terms: DispatchTerms) -> Search:
        """The batch's open requests and candidate edges (a seam the benchmark compares)."""
        return await find_all(
            session=session,
            region=self.region,
            now=now,
            present_after=now - timedelta(seconds=self.settings.driver_grace_s),
            max_distance_m=terms.max_pickup_distance_m,
            k=self.settings.matcher_candidates_k,
            side=self.search_side,
        )

    async def _sweep(self, session: AsyncSession, now: datetime, report: BatchReport) -> None:
        expired = await trips_service.expire_offers(session=session, now=now)
        unfulfilled, withdrawn = await trips_service.expire_requests(session=session, now=now)
        report.expired_offers = len(expired)
        report.unfulfilled = len(unfulfilled)
        for closed in [*expired, *withdrawn]:
            await push.offer_withdrawn(
                self.redis,
                driver_id=closed.driver_id,
                offer_id=closed.offer_id,
                reason=closed.reason,
            )
        for trip in unfulfilled:
            await push.trip_changed(
                self.redis, await trips_service.views(session=session, trip=trip)
            )

    # --- leadership --------------------------------------------------------------------------

    async def run(self) -> None:
        """Leads the region whenever no one else does, and batches while leading."""
        key = region_lock_key(self.region)
        while True:
            try:
                await self._lead(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("the %s matcher lost its footing; retrying", self.region)
            await asyncio.sleep(LEADERSHIP_RETRY_S)

    async def _lead(self, key: int) -> None:
        async with self.engine.connect() as lock_connection:
            got = await lock_connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": key}
            )
            await lock_connection.commit()
            self.leadership_tries += 1
            if not got:
                return
            logger.info("leading the %s matcher", self.region)
            self.leading = True
            try:
                await self._batches(lock_connection)
            finally:
                self.leading = False
                # A session-level lock outlives transactions: release it, or drop the
                # connection (which releases it) rather than return it to the pool still held.
                try:
                    await asyncio.shield(self._unlock(lock_connection, key))
                except BaseException:
                    await lock_connection.invalidate()
                    raise

    @staticmethod
    async def _unlock(connection: AsyncConnection, key: int) -> None:
        await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        await connection.commit()

    async def _batches(self, lock_connection: AsyncConnection) -> None:
        interval_s = 2.0
        while True:
            started = time.monotonic()
            try:
                report = await self.run_batch()
                if report.interval_ms is not None:
                    interval_s = report.interval_ms / 1000
                if report.offers or report.expired_offers or report.unfulfilled:
                    logger.info(
                        "batch: %d requests, %d candidates, %d offers, %d expired, %d unfulfilled",
                        report.requests,
                        report.candidates,
                        len(report.offers),
                        report.expired_offers,
                        report.unfulfilled,
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("a %s batch failed; the next one retries", self.region)
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))
            # Still holding the lock? A dead lock connection means another worker may lead now.
            await lock_connection.execute(text("SELECT 1"))
            await lock_connection.commit()
