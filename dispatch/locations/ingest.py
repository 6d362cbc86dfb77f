"""Position ingest: location frames are buffered in the process and written to PostGIS in bulk.

A driver reports every few seconds; writing each report on its own would cost one statement per
ping. Instead the sockets hand reports to a `LocationIngest`, and every
`COOP_LOCATION_FLUSH_INTERVAL_MS` one flush writes them all, in one statement on the ingest's
own connection (`dispatch.locations.flush`: the latest positions and presence, the trails of
drivers on a trip, and implausible reports counted on their trips). After it, each rider whose
driver moved gets a `driver_location` frame. Tests call `flush()` directly. While flushes fall
behind, reports are shed (`dispatch.locations.shedding`).

What a socket hands in is checked first (`admit`, then `receive`): one report per driver per
`MIN_REPORT_INTERVAL` on average, in bursts of at most `REPORT_BURST` (faster ones are refused,
never buffered), and only believable
positions (`dispatch.locations.plausibility`, under the agreement's
`dispatch.max_plausible_speed_kmh`) are buffered; the others are counted on the driver's open
trip at the next flush.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from collections import deque
from collections.abc import Hashable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from coop.db import create_engine
from coop.outages import OutageLog
from coop.redis_client import Redis
from dispatch.locations import flush as flush_writes
from dispatch.locations.admission import Pace, ReadingDelay
from dispatch.locations.flush import FlushResult, LatestReport, TrailReport
from dispatch.locations.plausibility import Fix, Track, Verdict, kmh_to_mps
from dispatch.locations.shedding import (
    CONGESTED_AFTER_S,
    CONGESTED_QUEUE_S,
    FLUSH_WINDOW_S,
    GAP_SPREAD,
    MAX_SHED_GAP_S,
    MIN_SHED_GAP_S,
    ONSET_SHARE,
    QUEUE_BASELINE_S,
    QUEUE_MIN_SOCKETS,
    QUEUE_WINDOW_S,
    RATE_MIN_S,
    RATE_WINDOW_S,
    SHED_GAP_TOLERANCE,
    SHED_MEMORY_MARGIN,
    SHED_MEMORY_S,
    SHED_RELAX_S,
    SHED_WIDEN,
    SHED_WIDEN_AFTER_S,
    STALE_REPORT_S,
    QueueClock,
    ShedGap,
    Take,
    stamped_at,
)

# This module's own names, and those moved to `shedding` and `flush` when it was split, still
# importable from here.
__all__ = [
    "AVAILABILITY_BURST",
    "DEFAULT_MAX_PLAUSIBLE_SPEED_KMH",
    "MAX_BUFFERED_TRAIL_POINTS",
    "MAX_TRAIL_POINTS_PER_DRIVER",
    "MIN_AVAILABILITY_INTERVAL",
    "MIN_REPORT_INTERVAL",
    "REPORT_BURST",
    "TRACK_IDLE_S",
    "TRACK_SWEEP_INTERVAL_S",
    "Intake",
    "LocationIngest",
    "CONGESTED_AFTER_S",
    "CONGESTED_QUEUE_S",
    "FlushResult",
    "GAP_SPREAD",
    "MAX_SHED_GAP_S",
    "MIN_SHED_GAP_S",
    "ONSET_SHARE",
    "QUEUE_BASELINE_S",
    "QueueClock",
    "SHED_GAP_TOLERANCE",
    "SHED_MEMORY_MARGIN",
    "SHED_MEMORY_S",
    "SHED_RELAX_S",
    "SHED_WIDEN",
    "SHED_WIDEN_AFTER_S",
    "ShedGap",
    "Take",
    "stamped_at",
]

logger = logging.getLogger("coop.locations")

# What a flush keeps for the next one when the database is away, so memory stays bounded.
MAX_BUFFERED_TRAIL_POINTS = 100_000
# Trail points one driver may add between two flushes (a few a second is plenty for the meter
# and the rider's map); beyond it a report only moves the latest position, so a runaway app
# cannot flood the trail.
MAX_TRAIL_POINTS_PER_DRIVER = 50
# A driver's app reports every few seconds, more often on a trip; one report per 100 ms on
# average is the most a driver may send (docs/protocol.md), counted when the server reads them.
# Reports sent a second apart reach it closer together when it reads in bursts (a busy event
# loop, a network that held them, a worker that stalled for a few seconds), so REPORT_BURST of
# them may come at once: an app within the pace never has its newest position refused. Faster
# ones are refused with `rate_limited`.
MIN_REPORT_INTERVAL = timedelta(milliseconds=100)
REPORT_BURST = 10
# An `availability` frame is a database transaction: one a second on average, AVAILABILITY_BURST
# at once (a driver taps on and off duty; a loop of them would otherwise be a flood of writes).
MIN_AVAILABILITY_INTERVAL = timedelta(seconds=1)
AVAILABILITY_BURST = 3
# The founding agreement's `dispatch.max_plausible_speed_kmh`, until the agreement in force is
# read (`set_max_plausible_speed`).
DEFAULT_MAX_PLAUSIBLE_SPEED_KMH = 130.0
# What is remembered of a driver not heard from for this long is forgotten (a reconnect seeds it
# again from their stored position); the sweep runs at most this often.
TRACK_IDLE_S = 600.0
TRACK_SWEEP_INTERVAL_S = 60.0


class Intake(enum.StrEnum):
    """What became of a location report handed to `receive`."""

    accepted = "accepted"  # buffered
    implausible = "implausible"  # an impossible move: not buffered, counted on the trip


class _Checks:
    """What `admit` and `receive` remember of one driver: when their last report was let in,
    the pace of their reports and availability changes, and the positions believed of them."""

    __slots__ = ("availability_pace", "last_admitted", "pace", "track")

    def __init__(self, track: Track) -> None:
        self.last_admitted: datetime | None = None
        self.pace = Pace()
        self.availability_pace = Pace()
        self.track = track


class LocationIngest:
    """The process's buffer of driver reports and its bulk writer."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        redis: Redis,
        grace_s: float,
        max_trail_points: int = MAX_BUFFERED_TRAIL_POINTS,
        backpressure: bool = True,
        time_scale: float = 1.0,
    ) -> None:
        # The flush's own connection, outside the pool the requests and the matcher share, so a
        # flush never queues behind them (nor they behind it); autocommit, since a flush is one
        # statement, and no pre-ping: a dead connection fails its flush, which is requeued, and
        # the next flush connects afresh.
        self._engine = create_engine(
            engine.url.render_as_string(hide_password=False),
            pool_size=1,
            max_overflow=0,
            pre_ping=False,
            autocommit=True,
        )
        # Seconds of the service's clock per real second: 1 but in a sped-up demo
        # (COOP_METER_TIME_SCALE), whose cars cover that many seconds' worth of road per second.
        self._time_scale = time_scale
        # The riders' ETA in their `driver_location` frames; set by the composition root (the
        # matcher's travel-time model), none without.
        self.eta: flush_writes.EtaArray | None = None
        self._max_trail_points = max_trail_points
        self._backpressure = backpressure
        self._last_attempt = time.monotonic()  # when the last flush ended, written or not
        self._flush_started: float | None = None
        self._gap = ShedGap()
        # (ended, took, the process's CPU seconds then) of the flushes lately
        self._flush_times: deque[tuple[float, float, float]] = deque()
        self._periodic = False  # `run` flushes by itself (not so in tests, which call flush())
        self.flush_failures = 0
        # Failures of the periodic flush and of the frames it publishes: outages or bugs.
        self.flush_outages = OutageLog(logger, "flushing driver positions")
        self.publish_outages = OutageLog(logger, "publishing driver_location frames")
        self.trail_points_dropped = 0
        self.reports_shed = 0
        self.reports_stale = 0  # of the shed: those dropped for having waited too long
        self._frames_read = 0  # location frames backpressure looked at
        self._rate_mark = (time.monotonic(), 0)
        self._reporting: set[uuid.UUID] = set()  # drivers admitted in this rate window
        self._report_interval_s = 0.0  # their mean report interval over the last window
        self._reading_delay = ReadingDelay(
            window_s=QUEUE_WINDOW_S, min_sockets=QUEUE_MIN_SOCKETS, now=time.monotonic()
        )
        # Driver sockets closed (1013) for sending faster than they were asked (the session
        # counts them here, next to the shedding).
        self.sockets_closed_for_ignoring = 0
        self._redis = redis
        self._grace_s = grace_s
        self._latest: dict[uuid.UUID, LatestReport] = {}
        self._trail: list[TrailReport] = []
        self._trail_counts: dict[uuid.UUID, int] = {}
        self._checks: dict[uuid.UUID, _Checks] = {}
        self._implausible: dict[uuid.UUID, int] = {}
        self._last_sweep = time.monotonic()
        self._max_speed_kmh = float(DEFAULT_MAX_PLAUSIBLE_SPEED_KMH)
        self._max_speed_mps = kmh_to_mps(DEFAULT_MAX_PLAUSIBLE_SPEED_KMH) * time_scale
        self._flush_lock = asyncio.Lock()
        self.reports_received = 0
        self.reports_rate_limited = 0
        self.availability_rate_limited = 0
        self.reports_implausible = 0
        self.flushes = 0

    @property
    def writer(self) -> AsyncEngine:
        """The flush's own engine (one connection, autocommit)."""
        return self._engine

    def set_max_plausible_speed(self, kmh: float) -> None:
        """The agreement's `dispatch.max_plausible_speed_kmh` in force (read periodically).
        Reports are timed in real seconds; in a sped-up demo each is worth `time_scale` of the
        service's seconds, so the speed believed per real second is that much higher."""
        self._max_speed_kmh = kmh
        self._max_speed_mps = kmh_to_mps(kmh) * self._time_scale

    def seed(self, driver_id: uuid.UUID, lat: float, lon: float, at: datetime) -> None:
        """Starts the driver's checks from their stored position (a socket opening), unless
        this process already follows them."""
        if driver_id not in self._checks:
            self._checks[driver_id] = _Checks(Track(Fix(lat, lon, at)))

    def _checks_of(self, driver_id: uuid.UUID) -> _Checks:
        checks = self._checks.get(driver_id)
        if checks is None:
            checks = self._checks[driver_id] = _Checks(Track())
        return checks

    def admit(self, driver_id: uuid.UUID, received_at: datetime) -> bool:
        """Whether a report from the driver may be handled at all: no more than one per
        MIN_REPORT_INTERVAL on average, REPORT_BURST at once. A refused one is dropped."""
        checks = self._checks_of(driver_id)
        if not checks.pace.allows(received_at, interval=MIN_REPORT_INTERVAL, burst=REPORT_BURST):
            self.reports_rate_limited += 1
            return False
        checks.last_admitted = received_at
        self._reporting.add(driver_id)
        return True

    def admit_availability(self, driver_id: uuid.UUID, received_at: datetime) -> bool:
        """Whether an availability change from the driver may be handled: no more than one per
        MIN_AVAILABILITY_INTERVAL on average, AVAILABILITY_BURST at once. A refused one is
        dropped."""
        checks = self._checks_of(driver_id)
        if not checks.availability_pace.allows(
            received_at, interval=MIN_AVAILABILITY_INTERVAL, burst=AVAILABILITY_BURST
        ):
            self.availability_rate_limited += 1
            return False
        checks.last_admitted = received_at  # a sign of activity: not forgotten by the sweep
        return True

    def receive(
        self,
        driver_id: uuid.UUID,
        *,
        lat: float,
        lon: float,
        heading_deg: float | None,
        speed_mps: float | None,
        received_at: datetime,
    ) -> Intake:
        """A report from the driver's socket, once admitted: not believed when it implies an
        impossible move since the last one believed (counted on their open trip at the next
        flush), else buffered."""
        checks = self._checks_of(driver_id)
        verdict = checks.track.judge(Fix(lat, lon, received_at), max_speed_mps=self._max_speed_mps)
        if verdict is Verdict.implausible:
            self.reports_implausible += 1
            self._implausible[driver_id] = self._implausible.get(driver_id, 0) + 1
            self.touch(driver_id, received_at)  # not believed, but a sign of life
            return Intake.implausible
        self._buffer(
            driver_id,
            lat=lat,
            lon=lon,
            heading_deg=heading_deg,
            speed_mps=speed_mps,
            received_at=received_at,
            segment_start=verdict is Verdict.anchored,
            anchored=verdict is Verdict.anchored,
        )
        return Intake.accepted

    def _sweep_checks(self, now: datetime) -> None:
        """Forgets the drivers this process has not heard from for TRACK_IDLE_S."""
        if time.monotonic() - self._last_sweep < TRACK_SWEEP_INTERVAL_S:
            return
        self._last_sweep = time.monotonic()
        horizon = now - timedelta(seconds=TRACK_IDLE_S)
        idle = [
            driver_id
            for driver_id, checks in self._checks.items()
            if checks.last_admitted is None or checks.last_admitted < horizon
        ]
        for driver_id in idle:
            del self._checks[driver_id]

    @property
    def max_plausible_speed_kmh(self) -> float:
        """The agreement's limit, in the service's time (the demo's simulated time)."""
        return self._max_speed_kmh

    @property
    def pending(self) -> int:
        """Drivers whose latest report waits for the next flush."""
        return len(self._latest)

    def report(
        self,
        driver_id: uuid.UUID,
        *,
        lat: float,
        lon: float,
        heading_deg: float | None,
        speed_mps: float | None,
        received_at: datetime,
    ) -> None:
        """Puts the driver at a position the server trusts without checking it (a placement,
        not a report from the driver's app, which goes through `admit` and `receive`): it is
        buffered as a new start, metered from nothing, and the driver's checks continue from
        it."""
        checks = self._checks_of(driver_id)
        checks.track = Track(Fix(lat, lon, received_at))
        self._buffer(
            driver_id,
            lat=lat,
            lon=lon,
            heading_deg=heading_deg,
            speed_mps=speed_mps,
            received_at=received_at,
            segment_start=True,
            anchored=False,  # the server's own placement: trusted, not a re-anchor
        )

    def _buffer(
        self,
        driver_id: uuid.UUID,
        *,
        lat: float,
        lon: float,
        heading_deg: float | None,
        speed_mps: float | None,
        received_at: datetime,
        segment_start: bool,
        anchored: bool,
    ) -> None:
        """Buffers a position for the next flush (it also says the driver is present).
        `segment_start`: the meter counts no distance from the trail's point before this one.
        `anchored`: believed only after a run of rejected positions (or from no reference), so
        it says nothing of the way the driver came (`arrived` and the fee look at it)."""
        earlier = self._latest.get(driver_id)
        anchored_at = earlier.anchored_at if earlier is not None else None
        if anchored:
            anchored_at = received_at
        self._latest[driver_id] = LatestReport(
            lat, lon, heading_deg, speed_mps, received_at, received_at, anchored_at
        )
        self.reports_received += 1
        count = self._trail_counts.get(driver_id, 0)
        if count < MAX_TRAIL_POINTS_PER_DRIVER:
            self._trail_counts[driver_id] = count + 1
            self._trail.append(TrailReport(driver_id, lat, lon, received_at, segment_start))
            if len(self._trail) > self._max_trail_points:
                del self._trail[0]  # the buffer is bounded: the oldest goes first
                self.trail_points_dropped += 1

    def touch(self, driver_id: uuid.UUID, at: datetime) -> None:
        """Buffers a sign of life without a position (the socket's ping loop calls it)."""
        latest = self._latest.get(driver_id)
        if latest is None:
            self._latest[driver_id] = LatestReport(None, None, None, None, None, at)
        elif at > latest.seen_at:
            latest.seen_at = at

    async def flush(self) -> FlushResult:
        """Writes everything buffered, in one statement."""
        async with self._flush_lock:
            latest, self._latest = self._latest, {}
            trail, self._trail = self._trail, []
            implausible, self._implausible = self._implausible, {}
            self._trail_counts = {}
            if latest:
                self._sweep_checks(max(row.seen_at for row in latest.values()))
            if not latest and not trail and not implausible:
                self._last_attempt = time.monotonic()
                return FlushResult(0, 0, 0)
            self._flush_started = time.monotonic()
            try:
                moved = await flush_writes.write(
                    self._engine, latest, trail, implausible, grace_s=self._grace_s
                )
            except BaseException:
                self.flush_failures += 1
                self._requeue(latest, trail, implausible)
                raise
            finally:
                self._flush_started = None
                self._last_attempt = time.monotonic()
            self.flushes += 1
        told = await flush_writes.tell_riders(self._redis, moved, self.publish_outages, self.eta)
        return FlushResult(len(latest), len(trail), told)

    def _requeue(
        self,
        latest: dict[uuid.UUID, LatestReport],
        trail: list[TrailReport],
        implausible: dict[uuid.UUID, int],
    ) -> None:
        """Puts back what a failed flush held, unless a newer report replaced it meanwhile."""
        for driver_id, count in implausible.items():
            self._implausible[driver_id] = self._implausible.get(driver_id, 0) + count
        for driver_id, row in latest.items():
            newer = self._latest.get(driver_id)
            if newer is None:
                self._latest[driver_id] = row
            elif newer.lat is None and row.lat is not None:
                row.seen_at = max(row.seen_at, newer.seen_at)
                self._latest[driver_id] = row
            elif newer.anchored_at is None:
                newer.anchored_at = row.anchored_at  # a re-anchor is never forgotten
        merged = trail + self._trail
        if len(merged) > self._max_trail_points:
            dropped = len(merged) - self._max_trail_points
            self.trail_points_dropped += dropped
            logger.warning("dropping the %d oldest unwritten trail points", dropped)
            merged = merged[dropped:]
        self._trail = merged

    async def run(self, interval_s: float) -> None:
        """Flushes every `interval_s` until cancelled; a failed flush is retried next time (the
        buffer keeps what it could not write, bounded)."""
        self._periodic = True
        while True:
            await asyncio.sleep(interval_s)
            started = time.monotonic()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # PostgreSQL away: the buffer keeps the reports, said once per outage. Anything
                # else is a bug, logged with its traceback at every flush it breaks.
                self.flush_outages.failed(exc)
            else:
                self.flush_outages.recovered()
            self._adjust_shedding(time.monotonic() - started)

    @property
    def buffered_trail_points(self) -> int:
        return len(self._trail)

    @property
    def congested(self) -> bool:
        """Flushes are falling behind: one has run for too long, or none ended lately while
        reports wait. (A database that is away is not congestion: reports are then buffered.)"""
        now = time.monotonic()
        started = self._flush_started
        if started is not None and now - started > CONGESTED_AFTER_S:
            return True
        if self.queue_delay_s > CONGESTED_QUEUE_S:
            return True
        return (
            self._periodic
            and bool(self._latest)
            and now - self._last_attempt > CONGESTED_AFTER_S * 4
        )

    def note_queued(self, socket: Hashable, queued_s: float, now: float) -> None:
        """An admitted report's wait before it was read (`QueueClock.queued_s`), from `socket`;
        the median over the sockets of each QUEUE_WINDOW_S is the worker's reading delay
        (`queue_delay_s`)."""
        self._reading_delay.note(socket, queued_s, now)

    @property
    def queue_delay_s(self) -> float:
        """The median over the sockets of their reports' wait in the last window (0 when too
        few sockets said when they sent them, or none came lately)."""
        if time.monotonic() - self._reading_delay.measured_at > 4 * QUEUE_WINDOW_S:
            return 0.0
        return self._reading_delay.delay_s

    def takes(
        self, last_taken: float, now: float, queued_s: float | None = None, spread: float = 1.0
    ) -> Take:
        """Backpressure: whether a socket whose previous location frame was taken at
        `last_taken` (monotonic) may have this one, which waited `queued_s` before it was read
        (None: unknown), taken. Always, unless flushes or reading fall behind: then a driver's
        frames are taken at most every `shed_gap_s`, a gap that widens while the congestion
        lasts (up to MAX_SHED_GAP_S) and narrows back once flushes keep up, and a frame that
        waited over STALE_REPORT_S is dropped. The newest position of each driver still arrives
        within the gap (`gap_for` the socket's `spread`)."""
        self._frames_read += 1
        if self._gap.gap_s <= 0.0:
            if not self._backpressure or not self.congested:
                return Take.taken
            self._gap.start(self._recent_interval_s(now), now)
        if queued_s is not None and queued_s > STALE_REPORT_S:
            self.reports_shed += 1
            self.reports_stale += 1
            return Take.stale
        if now - last_taken >= self.gap_for(spread) * SHED_GAP_TOLERANCE:
            return Take.taken
        self.reports_shed += 1
        return Take.shed

    @property
    def shed_gap_s(self) -> float:
        """How often each driver's location frames are taken while shedding (0: not shedding)."""
        return self._gap.gap_s

    def gap_for(self, spread: float) -> float:
        """The gap asked of a socket whose spread is `spread` (0: not shedding)."""
        return self._gap.for_socket(spread)

    @property
    def slowest_flush_s(self) -> float:
        """The slowest flush of the last FLUSH_WINDOW_S, or the one running if slower."""
        now = time.monotonic()
        self._forget_flushes(now)
        slowest = max((took for _, took, _ in self._flush_times), default=0.0)
        started = self._flush_started
        return max(slowest, now - started) if started is not None else slowest

    def _measure_rate(self, now: float) -> None:
        """The drivers' mean report interval over the last RATE_WINDOW_S: the drivers heard
        from over the location frames read per second."""
        started, _ = self._rate_mark
        if now - started < RATE_WINDOW_S:
            return
        self._report_interval_s = self._recent_interval_s(now)
        self._rate_mark = (now, self._frames_read)
        self._reporting = set()

    def _recent_interval_s(self, now: float) -> float:
        """The drivers' mean report interval since the current rate window began, or over the
        last whole one when this one is too young to tell."""
        started, read = self._rate_mark
        frames = self._frames_read - read
        if now - started < RATE_MIN_S or frames <= 0 or not self._reporting:
            return self._report_interval_s
        return len(self._reporting) / (frames / (now - started))

    @property
    def busy(self) -> float:
        """How busy the worker was over the flushes of the last FLUSH_WINDOW_S: the share of
        that time its process used the CPU, or its flushes ran, whichever is higher."""
        flushes = self._flush_times
        if len(flushes) < 2:
            return 0.0
        (first, _, cpu_then), (last, _, cpu_now) = flushes[0], flushes[-1]
        cpu = (cpu_now - cpu_then) / (last - first) if last > first else 0.0
        return max(cpu, sum(took for _, took, _ in flushes) / FLUSH_WINDOW_S)

    def _forget_flushes(self, now: float) -> None:
        while self._flush_times and self._flush_times[0][0] < now - FLUSH_WINDOW_S:
            self._flush_times.popleft()

    def _adjust_shedding(self, took_s: float) -> None:
        now = time.monotonic()
        self._flush_times.append((now, took_s, time.process_time()))
        self._forget_flushes(now)
        if not self._backpressure:
            return
        self._measure_rate(now)
        congested = took_s > CONGESTED_AFTER_S or self.congested
        if self._gap.gap_s <= 0.0:
            if congested:
                self._gap.start(self._recent_interval_s(now), now)
            return
        self._gap.adjust(busy=self.busy, congested=congested, now=now)

    async def close(self) -> None:
        """Closes the flush's own connection."""
        await self._engine.dispose()

    async def drain(self) -> None:
        """A last flush at shutdown, so reports received just before it are not lost."""
        try:
            await self.flush()
        except Exception as exc:
            if self.flush_outages.failed(exc) is not None:
                logger.warning("%d driver positions were not written before shutdown", self.pending)
