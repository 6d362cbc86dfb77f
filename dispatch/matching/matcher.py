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
import hashlib
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter, Histogram
from prometheus_client.core import Metric
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
from coop.db import utcnow
from coop.redis_client import Redis
from coop.settings import Settings
from dispatch.matching import assignment, costs, travelstore, traveltime
from dispatch.matching.candidates import (
    Candidate,
    Search,
    Side,
    find_all,
    holds_no_trip,
    reference_rate_per_h,
)
from dispatch.matching.travelstore import TravelTimes
from dispatch.matching.traveltime import IntArray, TravelModel
from dispatch.states import OFFER_OPEN_SQL, WAITING_SQL
from dispatch.trips import push
from dispatch.trips import service as trips_service
from dispatch.trips import timeouts as trip_timeouts
from dispatch.trips.models import Offer, Trip

logger = logging.getLogger("coop.matcher")

LEADERSHIP_RETRY_S = 2.0
# A leader that stops releases its lock; if the connection cannot say so in this time (it was
# cut in the middle of a statement), it is dropped instead, which releases the lock too.
UNLOCK_TIMEOUT_S = 5.0


def region_lock_key(region: str) -> int:
    """The advisory-lock key of a region's matcher: a stable signed 64-bit number."""
    digest = hashlib.sha256(f"coop.matcher:{region}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def explain(
    candidate: Candidate,
    pickup_eta_s: int,
    *,
    earnings_credited: bool = False,
    reference_per_h: float | None = None,
) -> str:
    """The offer's `why`, true to how the wait was counted, and with the driver's shift so far
    when it earned them an earnings credit."""
    why = _explain_wait(candidate, pickup_eta_s)
    if earnings_credited and reference_per_h is not None:
        shift = costs.explain_shift(
            earnings=candidate.shift_earnings,
            online_s=candidate.shift_online_s,
            reference_per_h=reference_per_h,
        )
        why = f"{why}; {shift}"
    return why


def explain_fairness(
    offered: Candidate, nearer: Candidate, terms: DispatchTerms, *, earnings_part: bool
) -> str:
    """Why fairness gave `offered` the trip over `nearer`, who would have had it without the
    drivers' fairness credit: the figures of the parts of the credit that favoured `offered`
    (`earnings_part`: their shortfall was the larger)."""
    waited_longer = terms.fairness_weight > 0 and offered.idle_s > nearer.idle_s
    return costs.explain_fairness(
        offered_distance_m=offered.distance_m,
        nearer_distance_m=nearer.distance_m,
        idle_s=(nearer.idle_s, offered.idle_s) if waited_longer else None,
        shift=(
            (
                (nearer.shift_earnings, nearer.shift_online_s),
                (offered.shift_earnings, offered.shift_online_s),
            )
            if earnings_part
            else None
        ),
    )


def _explain_wait(candidate: Candidate, pickup_eta_s: int) -> str:
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


def _without_driver_fairness(
    terms: DispatchTerms,
    chosen: dict[int, int],
    edge_of: dict[tuple[int, int], int],
    requests: npt.NDArray[np.int64],
    drivers_of: npt.NDArray[np.int64],
    etas: npt.NDArray[np.int64],
    waits: npt.NDArray[np.float64] | None,
    num_requests: int,
    num_drivers: int,
) -> dict[int, int]:
    """The assignment the batch would have had without the drivers' fairness credit (the same
    solve with the costs of a fairness weight of 0 and no earnings credit; the riders' credit
    kept), or {} when it cannot differ where it matters.

    An offer says fairness chose it only when, without the credit, its request would have gone
    to a nearer driver. A request given its nearest candidate has no nearer driver, so when every
    assigned request has its nearest candidate (always so without a driver credit in force) the
    second solve is skipped: nothing it could answer would change a `why`."""
    if terms.fairness_weight == 0 and not terms.earnings_credit_max_s:
        return {}
    nearest = np.full(num_requests, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(nearest, requests, etas)
    if all(etas[edge_of[(r, d)]] == nearest[r] for r, d in chosen.items()):
        return {}
    plain = costs.edge_cost_array(
        pickup_eta_s=etas,
        idle_s=np.zeros(len(etas), dtype=np.float64),
        fairness_weight=Decimal(0),
        request_wait_s=waits,
        rider_wait_credit_max_s=terms.rider_wait_credit_max_s,
    )
    return assignment.solve_arrays(num_requests, num_drivers, requests, drivers_of, plain)


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


@dataclass(frozen=True)
class Plan:
    """A solved batch: one draft per assigned request, and which of them are uncontested."""

    drafts: list[OfferDraft]
    edges: int
    drivers: int
    # Requests whose draft gives them their own cheapest candidate, a driver no other open
    # request has as a candidate: no request arriving later can make that pairing worse for
    # anyone now waiting, so an early batch may offer it at once.
    uncontested: frozenset[uuid.UUID]


def plan(
    candidates: list[Candidate],
    terms: DispatchTerms,
    timings: dict[str, float] | None = None,
    *,
    reference_per_h: float | None = None,
    model: TravelModel | None = None,
    hour: int = 0,
) -> Plan:
    """The edges of the batch and their costs, solved.

    Pure apart from the solver. The pickup ETAs come from the travel-time `model` (the prior
    when none is given) at `hour` of the week; the costs of the whole batch are computed at
    once with the array forms of `costs` and of the model, the path `loadtests.bench_matching`
    measures. `timings`, when given, receives the seconds spent on "costs" (with the drafts and
    their explanations) and "solve". `reference_per_h` is the median shift earnings per online
    hour of the drivers online (the earnings credit's reference; None: no earnings credit this
    batch)."""
    began = time.perf_counter()
    count = len(candidates)
    trips = sorted({c.trip_id for c in candidates})
    drivers = sorted({c.driver_id for c in candidates})
    trip_index = {trip_id: i for i, trip_id in enumerate(trips)}
    driver_index = {driver_id: i for i, driver_id in enumerate(drivers)}
    requests = np.fromiter((trip_index[c.trip_id] for c in candidates), np.int64, count)
    drivers_of = np.fromiter((driver_index[c.driver_id] for c in candidates), np.int64, count)
    etas = pickup_etas(candidates, trips, drivers, requests, drivers_of, model, hour)
    shortfall = None
    if terms.earnings_credit_max_s:
        shortfall = costs.earnings_shortfall_array(
            np.fromiter((c.shift_earnings for c in candidates), np.float64, count),
            np.fromiter((c.shift_online_s for c in candidates), np.float64, count),
            reference_per_h,
        )
    waits = None
    if terms.rider_wait_credit_max_s:
        waits = np.fromiter((c.request_wait_s for c in candidates), np.float64, count)
    edge_costs = costs.edge_cost_array(
        pickup_eta_s=etas,
        idle_s=np.fromiter((c.idle_s for c in candidates), np.float64, count),
        fairness_weight=terms.fairness_weight,
        fairness_credit_max_s=terms.fairness_credit_max_s,
        earnings_shortfall=shortfall,
        earnings_credit_max_s=terms.earnings_credit_max_s,
        request_wait_s=waits,
        rider_wait_credit_max_s=terms.rider_wait_credit_max_s,
    )
    solving = time.perf_counter()
    chosen = assignment.solve_arrays(len(trips), len(drivers), requests, drivers_of, edge_costs)
    solved = time.perf_counter()
    edge_of = {
        (int(r), int(d)): i for i, (r, d) in enumerate(zip(requests, drivers_of, strict=True))
    }
    # Per request its cheapest cost; per driver how many requests want them.
    cheapest = np.full(len(trips), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(cheapest, requests, edge_costs)
    wanted = np.bincount(drivers_of, minlength=len(drivers))
    unfair = _without_driver_fairness(
        terms, chosen, edge_of, requests, drivers_of, etas, waits, len(trips), len(drivers)
    )
    drafts, uncontested = [], set()
    for request_i, driver_i in sorted(chosen.items()):
        i = edge_of[(request_i, driver_i)]
        candidate, eta = candidates[i], int(etas[i])
        why = explain(
            candidate,
            eta,
            earnings_credited=shortfall is not None and bool(shortfall[i] > 0),
            reference_per_h=reference_per_h,
        )
        other_i = unfair.get(request_i)
        if other_i is not None and other_i != driver_i:
            nearer = edge_of[(request_i, other_i)]
            if etas[nearer] < eta:
                earnings_part = shortfall is not None and bool(shortfall[i] > shortfall[nearer])
                fairness = explain_fairness(
                    candidate, candidates[nearer], terms, earnings_part=earnings_part
                )
                why = f"{why}; {fairness}"
        drafts.append(
            OfferDraft(
                trip_id=candidate.trip_id,
                driver_id=candidate.driver_id,
                pickup_distance_m=round(candidate.distance_m),
                pickup_eta_s=eta,
                idle_s=round(candidate.idle_s),
                cost=int(edge_costs[i]),
                why=why,
            )
        )
        if edge_costs[i] == cheapest[request_i] and wanted[driver_i] == 1:
            uncontested.add(candidate.trip_id)
    if timings is not None:
        timings["solve"] = solved - solving
        timings["costs"] = (solving - began) + (time.perf_counter() - solved)
    return Plan(drafts, count, len(drivers), frozenset(uncontested))


def pickup_etas(
    candidates: list[Candidate],
    trips: list[uuid.UUID],
    drivers: list[uuid.UUID],
    requests: IntArray,
    drivers_of: IntArray,
    model: TravelModel | None,
    hour: int,
) -> IntArray:
    """Each edge's pickup ETA from the model; each driver's and each pickup's cell is found
    once (an edge shares them with the other edges of its driver and its request)."""
    count = len(candidates)
    model = model if model is not None else TravelModel.prior()
    learned = model.cells.size > 0
    driver_lat = np.full(len(drivers), np.nan)
    driver_lon = np.full(len(drivers), np.nan)
    pickup_lat = np.full(len(trips), np.nan)
    pickup_lon = np.full(len(trips), np.nan)
    for c, r, d in zip(candidates, requests.tolist(), drivers_of.tolist(), strict=True):
        driver_lat[d], driver_lon[d] = c.driver_lat, c.driver_lon
        pickup_lat[r], pickup_lon[r] = c.pickup_lat, c.pickup_lon
    return model.pickup_eta_s_array(
        distance_m=np.fromiter((c.distance_m for c in candidates), np.float64, count),
        from_lat=driver_lat[drivers_of],
        from_lon=driver_lon[drivers_of],
        to_lat=pickup_lat[requests],
        to_lon=pickup_lon[requests],
        hour=hour,
        # The prior has no cells to look up: no need to find any.
        from_cell=traveltime.cells_of(driver_lat, driver_lon)[drivers_of] if learned else None,
        to_cell=traveltime.cells_of(pickup_lat, pickup_lon)[requests] if learned else None,
    )


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
        self.full_batches = 0
        self.offers_made = 0
        self.metrics = metrics if metrics is not None else MatcherMetrics()
        # The travel-time model the ETAs come from; its leader recomputes it (`learn_travel`).
        self.travel = (
            travel
            if travel is not None
            else TravelTimes(sessionmaker, ZoneInfo(settings.time_zone))
        )
        self.travel_recomputes = 0
        self.travel_recompute_failures = 0

    async def run_batch(self, *, now: datetime | None = None, early: bool = False) -> BatchReport:
        """One batch: sweeps, candidates, costs, solve, offers, pushes.

        An early batch (`early=True`, between full ones) offers only uncontested requests (see
        `Plan.uncontested`), and only while few requests are open
        (`COOP_MATCHER_EARLY_MAX_REQUESTS`); everything else waits for the next full batch."""
        now = now or utcnow()
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
            made = await create_offers(
                session=session, drafts=drafts, now=now, timeout_s=terms.offer_timeout_s
            )
            clock.done("offers")
        await push.offered_all(self.redis, made)
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
            k=self.settings.matcher_candidates_k,
            side=self.search_side,
            max_requests=max_requests,
        )

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
            learner = asyncio.create_task(self._learn_travel(), name=f"traveltime-{self.region}")
            try:
                await self._batches(lock_connection)
            finally:
                self.leading = False
                learner.cancel()
                await asyncio.gather(learner, return_exceptions=True)
                # A session-level lock outlives transactions: release it, or drop the
                # connection (which releases it) rather than return it to the pool still held.
                try:
                    await asyncio.wait_for(
                        asyncio.shield(self._unlock(lock_connection, key)), UNLOCK_TIMEOUT_S
                    )
                except (Exception, asyncio.CancelledError):
                    # The connection could not say so in time (it was cut in the middle of a
                    # statement): drop it, which releases the lock too. Whatever ended the
                    # leadership (a cancellation, the batch loop's error) goes on up as it was;
                    # re-raising this one instead would turn a cancelled leader into one that
                    # retries for ever.
                    await lock_connection.invalidate()

    async def learn_travel(self, *, now: datetime | None = None) -> travelstore.Recomputed:
        """Folds the trips completed since the last recompute into the stored travel-time model
        (under the agreement's plausible speed), then reloads it here. Raises what the database
        raises; the model in use stays."""
        now = now or utcnow()
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
            except Exception:
                self.travel_recompute_failures += 1
                logger.warning(
                    "recomputing the travel-time model failed; keeping version %d, retrying",
                    self.travel.model.version,
                    exc_info=True,
                )
                delay = travelstore.RECOMPUTE_RETRY_S
            await asyncio.sleep(delay)

    @staticmethod
    async def _unlock(connection: AsyncConnection, key: int) -> None:
        await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        await connection.commit()

    async def _batches(self, lock_connection: AsyncConnection) -> None:
        """Full batches every `batch_interval_ms`; between them, when the agreement sets
        `min_batch_interval_ms`, an early batch every that many ms offers what is uncontested."""
        interval_s = tick_s = 2.0
        next_full = time.monotonic()
        while True:
            tick = time.monotonic()
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
            except Exception:
                logger.exception("a %s batch failed; the next one retries", self.region)
            if full:
                next_full = tick + interval_s
                self.full_batches += 1
            if full:
                # Still holding the lock? A dead lock connection means another worker may lead
                # now. Once per full batch, as before early batches existed.
                await lock_connection.execute(text("SELECT 1"))
                await lock_connection.commit()
            await asyncio.sleep(max(0.0, min(tick + tick_s, next_full) - time.monotonic()))
