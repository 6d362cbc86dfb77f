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
import functools
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from prometheus_client import Counter, Histogram
from prometheus_client.core import Metric
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bargaining import service as bargaining_service
from bargaining.exceptions import NoAgreementInForce
from bargaining.terms import DispatchTerms
from coop import jurisdiction
from coop.db import utcnow
from coop.outages import OutageLog
from coop.redis_client import Redis
from coop.settings import Settings
from coop.state import Clock
from dispatch.matching import capacity, leadership, travelstore
from dispatch.matching.candidates import (
    QUALIFIED_ALIASES,
    Search,
    Side,
    candidates_per_request,
    find_all,
    holds_no_trip,
    reference_fare,
    reference_rate_per_h,
)
from dispatch.matching.leadership import (
    RENEW_EVERY_S,
    RENEW_TIMEOUT_S,
    STEP_DOWN_S,
    Held,
    LostLeadership,
    RegionLock,
    fence,
    lead_forever,
    region_lock_key,
)
from dispatch.matching.planning import (
    OfferDraft,
    Plan,
    explain,
    explain_fairness,
    pickup_etas,
    plan,
)
from dispatch.matching.travelstore import TravelTimes
from dispatch.states import OFFER_OPEN_SQL, WAITING_SQL
from dispatch.trips import push
from dispatch.trips import service as trips_service
from dispatch.trips import timeouts as trip_timeouts
from dispatch.trips.models import Offer, Trip
from drivers.qualifications import qualified_sql, today_in

# This module's own names, and those moved to `planning` and `leadership` when it was split,
# still importable from here.
__all__ = [
    "BatchReport",
    "Matcher",
    "MatcherMetrics",
    "OfferDraft",
    "Plan",
    "create_offers",
    "explain",
    "explain_fairness",
    "pickup_etas",
    "plan",
    "region_lock_key",
]

logger = logging.getLogger("coop.matcher")

# A batch's offers, and the ids of those no driver's socket heard.
OffersMade = Callable[[list[tuple[Offer, Trip]], set[uuid.UUID]], None]


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
    min_interval_ms: int | None = None
    early: bool = False
    drivers: int = 0
    edges: int = 0
    # Seconds each stage took, in the order they ran (see MatcherMetrics.STAGES).
    stages: dict[str, float] = field(default_factory=dict)

    def ms(self, *stages: str) -> float:
        """Milliseconds the named stages took together (the benchmarks read them)."""
        return sum(self.stages.get(stage, 0.0) for stage in stages) * 1000

    @property
    def search_ms(self) -> float:
        return self.ms("search")

    @property
    def solve_ms(self) -> float:
        return self.ms("costs", "solve")

    @property
    def write_ms(self) -> float:
        return self.ms("offers")

    @property
    def push_ms(self) -> float:
        return self.ms("push")


# Hand-written: a conditional bulk insert from arrays, one statement for the whole batch.
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
    -- Still available and free (the search's rule, `candidates.holds_no_trip`); an open offer
    -- the batch did not see is left to the unique index on pending offers.
    JOIN location_driver_position p ON p.driver_id = u.driver_id AND p.available
    WHERE {holds_no_trip("u.driver_id")}
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


class MatcherMetrics:
    """Each batch's timings and sizes for `/metrics`: where a slow batch spent its time."""

    STAGES = ("sweep", "search", "costs", "solve", "offers", "push")
    _SECONDS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
    _SIZES = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)

    def __init__(self) -> None:
        # Kept out of any registry: the app's registry collects them through `collect`, so an
        # app whose lifespan runs twice (tests) does not register the same names twice.
        registry = None
        self.stage_seconds = Histogram(
            "coop_matcher_stage_seconds",
            "Seconds each stage of a matching batch took",
            ["stage"],
            buckets=self._SECONDS,
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "coop_matcher_batch_seconds",
            "Seconds a whole matching batch took (sweep to push)",
            buckets=self._SECONDS,
            registry=registry,
        )
        self.lateness_seconds = Histogram(
            "coop_matcher_batch_lateness_seconds",
            "How late a full batch started against its schedule (the previous one's start plus "
            "batch_interval_ms)",
            buckets=self._SECONDS,
            registry=registry,
        )
        self.early_batches = Counter(
            "coop_matcher_early_batches",
            "Batches run before the full interval because their requests were uncontested",
            registry=registry,
        )
        self.sizes = {
            name: Histogram(
                f"coop_matcher_batch_{name}",
                f"{description} per matching batch",
                buckets=self._SIZES,
                registry=registry,
            )
            for name, description in (
                ("requests", "Open requests considered"),
                ("drivers", "Candidate drivers"),
                ("edges", "Candidate pairings"),
            )
        }

    def collect(self) -> Iterator[Metric]:
        for collector in (
            self.stage_seconds,
            self.batch_seconds,
            self.lateness_seconds,
            self.early_batches,
            *self.sizes.values(),
        ):
            yield from collector.collect()

    def observe(self, report: BatchReport, seconds: float) -> None:
        self.batch_seconds.observe(seconds)
        for stage, spent in report.stages.items():
            self.stage_seconds.labels(stage=stage).observe(spent)
        self.sizes["requests"].observe(report.requests)
        self.sizes["drivers"].observe(report.drivers)
        self.sizes["edges"].observe(report.edges)
        if report.early and report.offers:
            self.early_batches.inc()


class _StageClock:
    """Times consecutive stages of one batch into `report.stages`."""

    def __init__(self, report: BatchReport) -> None:
        self.report = report
        self.last = time.perf_counter()

    def done(self, stage: str) -> None:
        now = time.perf_counter()
        self.report.stages[stage] = self.report.stages.get(stage, 0.0) + now - self.last
        self.last = now


class Matcher:
    """The region's matcher: `run_batch` once, or `run` to lead and batch until cancelled."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis,
        settings: Settings,
        metrics: MatcherMetrics | None = None,
        travel: TravelTimes | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        # The service's one clock (`app.state.clock`) when the runtime hands it in.
        self.clock: Clock = clock if clock is not None else utcnow
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.settings = settings
        self.region = settings.matcher_region
        # The law's qualification rule (docs/jurisdiction.md) for the candidate search.
        self.profile = jurisdiction.load(settings.jurisdiction)
        self._qualified: tuple[date, str] | None = None
        self._leading = False
        # The epoch this matcher took the lead with, while it leads (None: not leading, or a
        # batch run by hand, which nothing fences).
        self.epoch: int | None = None
        self.lost_leads = 0
        self._renewed = 0.0  # when the lease was last renewed (monotonic)
        self.lock = RegionLock(engine, self.region)
        # Failures of the leadership loop, the batches and the travel-time recomputes.
        self.leadership_outages = OutageLog(logger, f"leading the {self.region} matcher")
        self.batch_outages = OutageLog(logger, f"a {self.region} matching batch")
        self.travel_outages = OutageLog(logger, "recomputing the travel-time model")
        # None: search from the smaller side each batch; tests and the benchmark may fix it.
        self.search_side: Side | None = None
        self.batches = 0
        self.full_batches = 0
        self.offers_made = 0
        # Told of each batch's offers and of those no socket heard (set by the realtime layer).
        self.on_offers: OffersMade | None = None
        self.metrics = metrics if metrics is not None else MatcherMetrics()
        # The travel-time model the ETAs come from; its leader recomputes it (`learn_travel`).
        self.travel = (
            travel
            if travel is not None
            else TravelTimes(sessionmaker, ZoneInfo(settings.time_zone))
        )
        self.travel_recomputes = 0
        self.travel_recompute_failures = 0

    @property
    def leadership_tries(self) -> int:
        """Times it asked for the region's lock."""
        return self.lock.tries

    async def run_batch(self, *, now: datetime | None = None, early: bool = False) -> BatchReport:
        """One batch: sweeps, candidates, costs, solve, offers, pushes.

        An early batch (`early=True`, between full ones) offers only uncontested requests (see
        `Plan.uncontested`), and only while few requests are open
        (`COOP_MATCHER_EARLY_MAX_REQUESTS`); everything else waits for the next full batch."""
        now = now or self.clock()
        report = BatchReport(early=early)
        clock = _StageClock(report)
        started = clock.last
        self.batches += 1
        async with self.sessionmaker() as session:
            await self._sweep(session, now, report)
            clock.done("sweep")
            try:
                agreement = await bargaining_service.in_force(session=session, at=now)
            except NoAgreementInForce:
                # Nothing can be priced (the co-op has not voted one in yet): a state, not a
                # fault. Any other failure is the batch's error, logged by `_batches`.
                logger.warning("no agreement in force: nothing is matched")
                return report
            terms = agreement.terms.dispatch
            report.interval_ms = terms.batch_interval_ms
            report.min_interval_ms = terms.min_batch_interval_ms
            early_max = self.settings.matcher_early_max_requests if early else None
            search = await self.search(
                session=session, now=now, terms=terms, max_requests=early_max
            )
            reference = None
            if terms.earnings_credit_max_s and search.candidates:
                reference = await reference_rate_per_h(
                    session=session, present_after=self._present_after(now)
                )
            fare_reference = None
            if terms.earnings_credit_fare_scale_max is not None and search.candidates:
                fare_reference = await reference_fare(session=session, region=self.region, now=now)
            await session.commit()  # nothing is held open while the solver runs
            clock.done("search")
            candidates = search.candidates
            report.requests = search.requests
            report.side = search.side
            report.candidates = len(candidates)
            if not candidates:
                return report
            timings: dict[str, float] = {}
            solved = await asyncio.to_thread(
                functools.partial(
                    plan,
                    reference_per_h=reference,
                    model=self.travel.model,
                    hour=self.travel.hour(now),
                    reference_fare=fare_reference,
                ),
                candidates,
                terms,
                timings,
            )
            report.stages.update(timings)
            clock.last = time.perf_counter()
            report.drivers, report.edges = solved.drivers, solved.edges
            drafts = solved.drafts
            if early:
                drafts = [d for d in drafts if d.trip_id in solved.uncontested]
            if self.epoch is not None:
                # Only under the epoch this matcher took the lead with (leadership.fence).
                await fence(session, self.region, self.epoch)
            made = await create_offers(
                session=session, drafts=drafts, now=now, timeout_s=terms.offer_timeout_s
            )
            clock.done("offers")
        unheard = await push.offered_all(self.redis, made)
        if self.on_offers is not None and made:
            # Hands the offers to the push side (dispatch.realtime.offer_push), which never
            # makes the batch wait: it only queues.
            self.on_offers(made, unheard)
        clock.done("push")
        report.offers = [offer for offer, _ in made]
        self.offers_made += len(made)
        self.metrics.observe(report, time.perf_counter() - started)
        logger.debug(
            "batch",
            extra={
                "region": self.region,
                "early": early,
                "requests": report.requests,
                "drivers": report.drivers,
                "edges": report.edges,
                "offers": len(made),
                "stages_ms": {k: round(v * 1000, 1) for k, v in report.stages.items()},
            },
        )
        return report

    async def search(
        self,
        *,
        session: AsyncSession,
        now: datetime,
        terms: DispatchTerms,
        max_requests: int | None = None,
    ) -> Search:
        """The batch's open requests and candidate edges (a seam the benchmark compares); with
        `max_requests`, no candidates when more requests than that are open."""
        return await find_all(
            session=session,
            region=self.region,
            now=now,
            present_after=self._present_after(now),
            max_distance_m=terms.max_pickup_distance_m,
            k=candidates_per_request(terms, self.settings.matcher_candidates_k),
            qualified=qualified_sql(self.profile, today_in(self.profile, now), **QUALIFIED_ALIASES),
            side=self.search_side,
            max_requests=max_requests,
        )

    def qualified_on(self, now: datetime) -> str:
        """The law's qualification rule of `now`'s day, for the candidate search: compiled once
        a day, not at every batch (a batch is the hot path)."""
        today = today_in(self.profile, now)
        if self._qualified is None or self._qualified[0] != today:
            self._qualified = (today, qualified_sql(self.profile, today, **QUALIFIED_ALIASES))
        return self._qualified[1]

    def _present_after(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self.settings.driver_grace_s)

    async def _sweep(self, session: AsyncSession, now: datetime, report: BatchReport) -> None:
        expired = await trips_service.expire_offers(session=session, now=now)
        unfulfilled, withdrawn = await trips_service.expire_requests(session=session, now=now)
        # Minutes-long waits: the full batches (every batch_interval_ms) are often enough.
        timed_out = (
            []
            if report.early
            else await trip_timeouts.time_out(
                session=session,
                now=now,
                region=self.region,
                time_scale=self.settings.meter_time_scale,
            )
        )
        report.expired_offers = len(expired)
        report.unfulfilled = len(unfulfilled)
        for closed in [*expired, *withdrawn]:
            await push.offer_withdrawn(
                self.redis,
                driver_id=closed.driver_id,
                offer_id=closed.offer_id,
                reason=closed.reason,
            )
        for trip in [*unfulfilled, *timed_out]:
            await push.trip_changed(
                self.redis, await trips_service.views(session=session, trip=trip)
            )
        if not report.early:
            # Cars that fell silent left their place under the cap: the next in line take it.
            admitted = await capacity.admit_waiting(
                session=session,
                cap=capacity.cap_of(self.settings),
                now=now,
                grace_s=self.settings.driver_grace_s,
            )
            await session.commit()
            for driver_id in admitted:
                await capacity.tell_admitted(self.redis, driver_id)

    # --- leadership (dispatch.matching.leadership) -------------------------------------------

    async def run(self) -> None:
        """Leads the region whenever no one else does, and batches while leading."""
        await lead_forever(self.lock, self._lead, self.leadership_outages)

    @property
    def leading(self) -> bool:
        """Whether this worker leads its region: it took the lead and renewed its lease within
        STEP_DOWN_S. A leader thawed after a freeze says no at once, before its loop notices."""
        return self._leading and time.monotonic() - self._renewed <= STEP_DOWN_S

    async def _lead(self, held: Held) -> None:
        # Taking the lead renewed the lease (the epoch's row was written just now).
        self._renewed = time.monotonic()
        self._leading = True
        self.epoch = held.epoch
        learner = asyncio.create_task(self._learn_travel(), name=f"traveltime-{self.region}")
        try:
            await self._batches(held)
        finally:
            self._leading = False
            self.epoch = None
            learner.cancel()
            await asyncio.gather(learner, return_exceptions=True)

    async def learn_travel(self, *, now: datetime | None = None) -> travelstore.Recomputed:
        """Folds the trips completed since the last recompute into the stored travel-time model
        (under the agreement's plausible speed), then reloads it here. Raises what the database
        raises; the model in use stays."""
        now = now or self.clock()
        async with self.sessionmaker() as session:
            try:
                agreement = await bargaining_service.in_force(session=session, at=now)
            except NoAgreementInForce:
                return travelstore.Recomputed(None, 0, 0)
            await session.commit()
            done = await travelstore.recompute(
                session=session,
                now=now,
                zone=self.travel.zone,
                max_speed_kmh=float(agreement.terms.dispatch.max_plausible_speed_kmh),
                # A sped-up demo's trails are stamped in real seconds: learned in its own.
                time_scale=self.settings.meter_time_scale,
            )
        self.travel_recomputes += 1
        if done.version is not None:
            logger.info(
                "travel-time model %d: %d trips, %d passages folded in",
                done.version,
                done.trips,
                done.passages,
            )
        await self.travel.refresh()
        return done

    async def _learn_travel(self) -> None:
        """While leading: `learn_travel` every few minutes; after a failure (the database
        restarting), the last model stays in use and it tries again sooner."""
        while True:
            try:
                done = await self.learn_travel()
                # A backlog (the first recompute on a database of old trips) goes on at once.
                full = done.trips >= travelstore.RECOMPUTE_MAX_TRIPS
                delay = 1.0 if full else travelstore.RECOMPUTE_INTERVAL_S
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The model in use stays either way; an outage is said once, a bug every time.
                self.travel_recompute_failures += 1
                self.travel_outages.failed(exc)
                delay = travelstore.RECOMPUTE_RETRY_S
            else:
                self.travel_outages.recovered()
            await asyncio.sleep(delay)

    async def _batches(self, held: Held) -> None:
        """Full batches every `batch_interval_ms`; between them, when the agreement sets
        `min_batch_interval_ms`, an early batch every that many ms offers what is uncontested."""
        interval_s = tick_s = 2.0
        next_full = self._renewed = time.monotonic()  # the lead was taken (or renewed) just now
        while True:
            tick = time.monotonic()
            if tick - self._renewed > STEP_DOWN_S:
                # Frozen, or a batch or renewal that hung: another worker may take the lead once
                # the lease lapses, so this one stops first (its writes are fenced regardless).
                logger.warning(
                    "no longer leading: the lease was not renewed for %.0f s", tick - self._renewed
                )
                self.lost_leads += 1
                return
            # asyncio may wake a sleeper up to its clock's resolution early.
            full = tick >= next_full - 0.001
            if full:
                self.metrics.lateness_seconds.observe(max(0.0, tick - next_full))
            try:
                report = await self.run_batch(early=not full)
                if report.interval_ms is not None:
                    interval_s = report.interval_ms / 1000
                    tick_s = (report.min_interval_ms or report.interval_ms) / 1000
                if report.offers or report.expired_offers or report.unfulfilled:
                    logger.info(
                        "%s batch: %d requests, %d candidates, %d offers, %d expired, "
                        "%d unfulfilled",
                        "early" if report.early else "full",
                        report.requests,
                        report.candidates,
                        len(report.offers),
                        report.expired_offers,
                        report.unfulfilled,
                    )
            except asyncio.CancelledError:
                raise
            except LostLeadership as lost:
                # Another worker leads since (this one was frozen or cut off): stop, unwritten.
                logger.warning("no longer leading: %s", lost)
                self.lost_leads += 1
                return
            except Exception as exc:
                # The next batch retries either way; an outage is said once, a bug every time.
                self.batch_outages.failed(exc)
            else:
                self.batch_outages.recovered()
            if full:
                next_full = tick + interval_s
                self.full_batches += 1
            # Until the next batch, the lease is renewed every RENEW_EVERY_S (a dead lock
            # connection, or an epoch another worker moved, ends the lead here).
            try:
                await self._renewing_until(held, min(tick + tick_s, next_full))
            except LostLeadership as lost:
                logger.warning("no longer leading: %s", lost)
                self.lost_leads += 1
                return

    async def _renewing_until(self, held: Held, wake: float) -> None:
        """Sleeps until `wake` (monotonic), renewing the lease whenever it is due."""
        while True:
            if time.monotonic() - self._renewed >= RENEW_EVERY_S:
                # Not wait_for: cancelling a statement on a silent link waits on that link too.
                renewing = asyncio.ensure_future(held.renew())
                done, _ = await asyncio.wait({renewing}, timeout=RENEW_TIMEOUT_S)
                if not done:
                    renewing.cancel()
                    renewing.add_done_callback(leadership.forget)
                    raise LostLeadership(
                        f"renewing the {self.region} matcher's lease took over {RENEW_TIMEOUT_S} s"
                    )
                renewing.result()
                self._renewed = time.monotonic()
            remaining = wake - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, RENEW_EVERY_S))
