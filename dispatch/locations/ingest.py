"""Position ingest: location frames are buffered in the process and written to PostGIS in bulk.

A driver reports every few seconds; writing each report on its own would cost one statement per
ping. Instead the sockets hand reports to a `LocationIngest`, and every
`COOP_LOCATION_FLUSH_INTERVAL_MS` one flush writes them all, in one statement (`_FLUSH`: one
round trip, on the ingest's own connection):

- an `INSERT ... SELECT FROM unnest(...) ON CONFLICT (driver_id) DO UPDATE` for the latest
  position and presence of every driver heard from (the row the matcher's KNN search reads);
- an `INSERT ... SELECT FROM unnest(...) JOIN trip` appending the reports of drivers who hold a
  trip to that trip's trail (the meter and the rider's live view);
- an `UPDATE trip` counting implausible reports on the drivers' open trips.

After it, each rider whose driver moved gets a `driver_location` frame. Tests call
`flush()` directly.

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
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from coop.db import create_engine
from coop.pubsub import rider_channel
from coop.redis_client import Redis
from dispatch.locations.admission import Pace, ReadingDelay
from dispatch.locations.frames import DriverLocationFrame
from dispatch.locations.plausibility import Fix, Track, Verdict, kmh_to_mps
from dispatch.locations.shifts import SHIFT_BREAK_S, shift_accounting
from dispatch.states import DRIVER_OPEN_LIST

logger = logging.getLogger("coop.locations")

# What a flush keeps for the next one when the database is away, so memory stays bounded.
MAX_BUFFERED_TRAIL_POINTS = 100_000
# Trail points one driver may add between two flushes (a few a second is plenty for the meter
# and the rider's map); beyond it a report only moves the latest position, so a runaway app
# cannot flood the trail.
MAX_TRAIL_POINTS_PER_DRIVER = 50
# Flushes are behind when one runs longer than this (or none ended for four times it while
# reports wait).
CONGESTED_AFTER_S = 1.5
# `/metrics` gives the slowest flush of this window (coop_location_flush_slowest_seconds).
FLUSH_WINDOW_S = 5.0
# While they are, a driver's location reports are taken at most this often (`ShedGap`): the
# rest are shed, and counted. Below MIN_SHED_GAP_S, shedding stops.
MIN_SHED_GAP_S = 1.0
MAX_SHED_GAP_S = 8.0
# When shedding starts, the gap asked is the drivers' mean report interval as the worker read
# them lately (the frames read since the last RATE_WINDOW_S began, or over that whole window
# when it began under RATE_MIN_S ago) divided by ONSET_SHARE. A worker that reads behind reads
# about as fast as it can, so every socket is asked for three quarters of its share of what the
# worker managed (the backlog the overload left drains meanwhile), whatever its app's own pace
# (every 4 s, or every second on a trip); a worker whose flushes alone fall behind reads what
# the apps send, and the widening below takes over.
ONSET_SHARE = 0.75
RATE_WINDOW_S = 2.0
RATE_MIN_S = 0.5
# Then the gap follows the worker's capacity in small steps, since twice its sustained rate
# and its sustained rate are only a step of 2 apart, and a flush's time grows steeply as the
# rate nears what the worker can write:
# - congestion still there (a flush over CONGESTED_AFTER_S, or reading behind) widens the gap
#   by SHED_WIDEN, at most every SHED_WIDEN_AFTER_S (the sockets need a moment to hear the ask
#   and heed it, and the frames sent before it to drain); the gap it widened from is
#   remembered for SHED_MEMORY_S, and the gap does not narrow back within SHED_MEMORY_MARGIN of
#   it meanwhile: that rate overloaded the worker a moment ago;
# - it narrows only after SHED_HOLD_S since a widening, then at most every SHED_RELAX_S (the
#   sockets were asked to report less often for 10 s, docs/protocol.md, `overloaded`), by how
#   busy the worker was over the last FLUSH_WINDOW_S: the share of it the process used the
#   CPU (a worker is one event loop: near one whole core it reads and flushes as fast as it
#   can), or the share its flushes ran, whichever is higher: by the first step of
#   SHED_NARROWING whose share it is under (the idler, the larger), not at all above the last
#   (near capacity);
# - shedding stops when the gap narrows below MIN_SHED_GAP_S. When congestion comes back
#   within SHED_MEMORY_S of that, the apps' own rate is still too much: shedding starts again
#   at the gap it stopped from, widened once, and the next stop waits twice as long as the
#   last (from SHED_MEMORY_S, up to SHED_STOP_HOLD_MAX_S), so the worker is not overloaded
#   again every half minute by the full rate coming back.
SHED_WIDEN = 1.2
SHED_WIDEN_AFTER_S = 5.0
SHED_MEMORY_S = 30.0
SHED_MEMORY_MARGIN = 1.1
SHED_HOLD_S = 10.0
SHED_RELAX_S = 5.0
SHED_NARROWING = ((0.5, 1.5), (0.75, 1.25), (0.9, 1.1))  # (busy under, the gap divided by)
SHED_STOP_HOLD_MAX_S = 300.0
# Each socket is asked for the gap times its own spread, drawn once between 1 - GAP_SPREAD and
# 1 + GAP_SPREAD (`gap_for`): apps that all reported within their usual interval before the
# ask would otherwise keep reporting within that interval of each other, now once a gap, and
# the worker would read in bursts, slow flush after each, and idle between; with the spread
# their reports drift apart within a few gaps.
GAP_SPREAD = 0.2
# A frame is taken when at least this share of the gap has passed since the socket's last one
# taken: an app that keeps the gap sees its frames arrive a little early or late (the network,
# the server's own scheduling), and must not lose them for it.
SHED_GAP_TOLERANCE = 0.8
# How long a report waited before the service read it (in the network, the socket's buffers and
# the server's queue) is told by its `ts` against the socket's usual (`QueueClock`). Only reports
# parsed and admitted are counted, each socket once a QUEUE_WINDOW_S (its latest), so a socket
# that floods stamped frames weighs no more than one that reports every few seconds
# (`admission.ReadingDelay`). When the lower median over the sockets of a window (at least
# QUEUE_MIN_SOCKETS; the lower, so that half of them or fewer cannot raise it) is above
# CONGESTED_QUEUE_S, the worker reads behind what its sockets send: that is congestion too, seen
# before any flush slows down. While shedding, a report that waited over STALE_REPORT_S is
# dropped unused: a newer one of the same driver is behind it, and reading through a backlog of
# stale positions is what keeps every position late (the socket is not blamed for it, unless
# it stamped them closer together than any app may send: the session counts those as sent
# faster than asked).
QUEUE_WINDOW_S = 0.5
QUEUE_MIN_SOCKETS = 3
CONGESTED_QUEUE_S = 1.0
STALE_REPORT_S = 2.0
# The usual delay of a socket is the least seen over the last one to two minutes: a clock set
# anew or a slower network is learned again within that time.
QUEUE_BASELINE_S = 60.0
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


class Take(enum.Enum):
    """Backpressure's verdict on a location frame before it is read (`LocationIngest.takes`)."""

    taken = "taken"
    shed = "shed"  # within the gap the service asked for: the socket sends too often
    stale = "stale"  # waited too long before it was read: a newer report follows it


def _within_bounds(gap_s: float) -> float:
    """A gap to ask for, within the protocol's `report_every_ms` (MIN_SHED_GAP_S to
    MAX_SHED_GAP_S)."""
    return min(MAX_SHED_GAP_S, max(MIN_SHED_GAP_S, gap_s))


class ShedGap:
    """How often each driver's location reports are taken while the worker sheds (`gap_s`, 0
    when it does not): chosen when shedding starts from the drivers' report rate, then widened
    while congestion lasts and narrowed while flushes leave the worker idle enough, in the
    steps above. Pure: the caller says what it saw and when."""

    __slots__ = (
        "_changed",
        "_failed_at",
        "_failed_gap_s",
        "_judged",
        "_started",
        "_stop_hold_s",
        "_stopped_at",
        "_stopped_from_s",
        "_wait_s",
        "gap_s",
    )

    def __init__(self) -> None:
        self.gap_s = 0.0
        self._changed = -math.inf  # when the gap last changed
        self._judged = -math.inf  # when narrowing was last considered (or the gap changed)
        self._wait_s = 0.0  # how long after that it is considered again
        self._failed_gap_s = 0.0  # the last gap (or report interval) the worker could not take
        self._failed_at = -math.inf
        self._started = -math.inf  # when shedding last started
        self._stopped_at = -math.inf  # when it last stopped, and the gap it stopped from
        self._stopped_from_s = 0.0
        self._stop_hold_s = SHED_MEMORY_S  # how long shedding lasts at least before it stops

    def start(self, report_interval_s: float, now: float) -> None:
        """Shedding starts: each driver is asked for ONSET_SHARE of the rate it was read at
        lately, or, when shedding stopped only a moment ago, for the gap it stopped from widened
        once."""
        self._failed_gap_s, self._failed_at = report_interval_s, now
        gap = report_interval_s / ONSET_SHARE
        if now - self._stopped_at < SHED_MEMORY_S:
            # not from the rate measured lately: the apps still heed the last ask
            gap = self._stopped_from_s * SHED_WIDEN
            self._stop_hold_s = min(SHED_STOP_HOLD_MAX_S, self._stop_hold_s * 2)
        else:
            self._stop_hold_s = SHED_MEMORY_S
        self._started = now
        self._change(_within_bounds(gap), now, SHED_HOLD_S)

    def adjust(self, *, busy: float, congested: bool, now: float) -> bool:
        """After a flush, with the flushes lately keeping the worker `busy` that share of the
        time and the worker `congested` or not: whether the gap changed. Not shedding, nothing
        changes (the caller starts it)."""
        if self.gap_s <= 0.0:
            return False
        if congested:
            if now - self._changed < SHED_WIDEN_AFTER_S:
                return False
            self._failed_gap_s, self._failed_at = self.gap_s, now
            self._change(_within_bounds(self.gap_s * SHED_WIDEN), now, SHED_HOLD_S)
            return True
        if now - self._judged < self._wait_s:
            return False
        self._judged, self._wait_s = now, SHED_RELAX_S
        step = next((step for under, step in SHED_NARROWING if busy < under), None)
        if step is None:  # near capacity: judged again after another while
            return False
        narrower = self.gap_s / step
        if now - self._failed_at < SHED_MEMORY_S:
            narrower = max(narrower, self._failed_gap_s * SHED_MEMORY_MARGIN)
        if narrower < MIN_SHED_GAP_S:
            if now - self._started < self._stop_hold_s:
                narrower = MIN_SHED_GAP_S
            else:
                self._stopped_at, self._stopped_from_s = now, self.gap_s
                narrower = 0.0
        if narrower >= self.gap_s:
            return False
        self._change(narrower, now, SHED_RELAX_S)
        return True

    def for_socket(self, spread: float) -> float:
        """The gap asked of a socket whose spread (GAP_SPREAD) is `spread`: 0 when not
        shedding, else within the protocol's bounds."""
        if self.gap_s <= 0.0:
            return 0.0
        return _within_bounds(self.gap_s * spread)

    def _change(self, gap_s: float, now: float, wait_s: float) -> None:
        self.gap_s, self._changed, self._judged, self._wait_s = gap_s, now, now, wait_s


class QueueClock:
    """One socket's view of how long its reports wait before the service reads them: the
    report's `ts` (the device's clock) against the time it is read, less the least such
    difference seen lately (which holds the clocks' offset and the network's usual delay)."""

    __slots__ = ("_current", "_previous", "_started")

    def __init__(self) -> None:
        self._current = math.inf
        self._previous = math.inf
        self._started: float | None = None

    def queued_s(self, ts: float, read_at: float) -> float:
        """Seconds the report stamped `ts` (epoch seconds) waited beyond this socket's usual,
        read at `read_at` (epoch seconds)."""
        offset = read_at - ts
        if self._started is None or read_at - self._started >= QUEUE_BASELINE_S:
            self._previous, self._current, self._started = self._current, offset, read_at
        elif offset < self._current:
            self._current = offset
        return max(0.0, offset - min(self._current, self._previous))


_TS = re.compile(r'"ts"\s*:\s*"([^"]{10,40})"')


def stamped_at(raw: str) -> float | None:
    """A location frame's `ts` in epoch seconds, read without parsing the frame (None when it
    has none, or not one that reads as a time with its offset: the frame's parsing says why)."""
    found = _TS.search(raw)
    if found is None:
        return None
    try:
        stamp = datetime.fromisoformat(found.group(1))
    except ValueError:
        return None
    return stamp.timestamp() if stamp.tzinfo is not None else None


class Intake(enum.StrEnum):
    """What became of a location report handed to `receive`."""

    accepted = "accepted"  # buffered
    implausible = "implausible"  # an impossible move: not buffered, counted on the trip


# The whole flush is this one statement, sent on the ingest's own connection in autocommit: one
# round trip, atomic on its own (data-modifying CTEs all run, to completion, in one snapshot).
# - `counted`: implausible reports counted on their drivers' open trips;
# - `latest`: the latest position and presence of every driver heard from (the row the
#   matcher's KNN search reads);
# - `appended`: the reports of drivers who hold a trip, appended to that trip's trail; the
#   statement returns each such trip's newest point and rider, for the rider's live view.
# Empty arrays make empty sub-statements, so one form serves every flush.
_FLUSH = text(
    f"""
    WITH counted AS (
        UPDATE trip t SET implausible_positions = t.implausible_positions + u.n
        FROM unnest(CAST(:implausible_ids AS uuid[]), CAST(:implausible_counts AS int[]))
             AS u(driver_id, n)
        WHERE t.driver_id = u.driver_id AND t.status IN {DRIVER_OPEN_LIST}
        RETURNING t.id
    ),
    latest AS (
        INSERT INTO location_driver_position AS p
            (driver_id, position, heading_deg, speed_mps, reported_at, available, last_seen_at,
             anchored_at)
        SELECT u.driver_id,
               CASE WHEN u.lat IS NULL THEN NULL
                    ELSE CAST(ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326) AS geography) END,
               u.heading_deg, u.speed_mps, u.reported_at, false, u.seen_at, u.anchored_at
        FROM unnest(
            CAST(:driver_ids AS uuid[]), CAST(:lats AS float8[]), CAST(:lons AS float8[]),
            CAST(:headings AS float8[]), CAST(:speeds AS float8[]),
            CAST(:reported AS timestamptz[]), CAST(:seen AS timestamptz[]),
            CAST(:anchored AS timestamptz[])
        ) AS u(driver_id, lat, lon, heading_deg, speed_mps, reported_at, seen_at, anchored_at)
        JOIN driver d ON d.id = u.driver_id
        ON CONFLICT (driver_id) DO UPDATE SET
            position = CASE WHEN EXCLUDED.position IS NULL
                              OR EXCLUDED.reported_at < p.reported_at
                            THEN p.position ELSE EXCLUDED.position END,
            heading_deg = CASE WHEN EXCLUDED.position IS NULL
                                 OR EXCLUDED.reported_at < p.reported_at
                               THEN p.heading_deg ELSE EXCLUDED.heading_deg END,
            speed_mps = CASE WHEN EXCLUDED.position IS NULL
                               OR EXCLUDED.reported_at < p.reported_at
                             THEN p.speed_mps ELSE EXCLUDED.speed_mps END,
            reported_at = GREATEST(p.reported_at, EXCLUDED.reported_at),
            anchored_at = GREATEST(p.anchored_at, EXCLUDED.anchored_at),
            -- silent for longer than the grace period: a new stretch of waiting begins
            available_since = CASE
                WHEN p.available AND p.last_seen_at
                     < EXCLUDED.last_seen_at - make_interval(secs => CAST(:grace_s AS float8))
                THEN EXCLUDED.last_seen_at ELSE p.available_since END,
            last_seen_at = GREATEST(p.last_seen_at, EXCLUDED.last_seen_at),
            -- the shift (dispatch.locations.shifts): a sign of life keeps the duty it had
            {shift_accounting(on_duty="p.available")}
        RETURNING p.driver_id
    ),
    appended AS (
        INSERT INTO location_trail_point
            (trip_id, driver_id, position, recorded_at, segment_start)
        SELECT t.id, u.driver_id,
               CAST(ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326) AS geography), u.recorded_at,
               u.segment_start
        FROM unnest(
            CAST(:trail_ids AS uuid[]), CAST(:trail_lats AS float8[]),
            CAST(:trail_lons AS float8[]), CAST(:recorded AS timestamptz[]),
            CAST(:segment_starts AS boolean[])
        ) AS u(driver_id, lat, lon, recorded_at, segment_start)
        JOIN trip t ON t.driver_id = u.driver_id
                   AND t.status IN {DRIVER_OPEN_LIST}
        RETURNING trip_id, position, recorded_at, id
    )
    SELECT DISTINCT ON (a.trip_id)
           a.trip_id, t.rider_id, ST_Y(a.position::geometry), ST_X(a.position::geometry)
    FROM appended a JOIN trip t ON t.id = a.trip_id
    ORDER BY a.trip_id, a.recorded_at DESC, a.id DESC
    """
)


@dataclass
class _Latest:
    lat: float | None
    lon: float | None
    heading_deg: float | None
    speed_mps: float | None
    reported_at: datetime | None
    seen_at: datetime
    # The newest report of the batch believed only as a new start (Verdict.anchored).
    anchored_at: datetime | None = None


@dataclass(frozen=True)
class _TrailPoint:
    driver_id: uuid.UUID
    lat: float
    lon: float
    recorded_at: datetime
    segment_start: bool


class _Checks:
    """What `admit` and `receive` remember of one driver: when their last report was let in,
    the pace of their reports and availability changes, and the positions believed of them."""

    __slots__ = ("availability_pace", "last_admitted", "pace", "track")

    def __init__(self, track: Track) -> None:
        self.last_admitted: datetime | None = None
        self.pace = Pace()
        self.availability_pace = Pace()
        self.track = track


@dataclass(frozen=True)
class FlushResult:
    drivers: int  # latest-position rows written
    trail_points: int  # reports offered to trip trails
    riders_told: int  # driver_location frames published


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
        self._max_trail_points = max_trail_points
        self._backpressure = backpressure
        self._last_attempt = time.monotonic()  # when the last flush ended, written or not
        self._flush_started: float | None = None
        self._gap = ShedGap()
        # (ended, took, the process's CPU seconds then) of the flushes lately
        self._flush_times: deque[tuple[float, float, float]] = deque()
        self._periodic = False  # `run` flushes by itself (not so in tests, which call flush())
        self.flush_failures = 0
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
        self._latest: dict[uuid.UUID, _Latest] = {}
        self._trail: list[_TrailPoint] = []
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
        self._latest[driver_id] = _Latest(
            lat, lon, heading_deg, speed_mps, received_at, received_at, anchored_at
        )
        self.reports_received += 1
        count = self._trail_counts.get(driver_id, 0)
        if count < MAX_TRAIL_POINTS_PER_DRIVER:
            self._trail_counts[driver_id] = count + 1
            self._trail.append(_TrailPoint(driver_id, lat, lon, received_at, segment_start))
            if len(self._trail) > self._max_trail_points:
                del self._trail[0]  # the buffer is bounded: the oldest goes first
                self.trail_points_dropped += 1

    def touch(self, driver_id: uuid.UUID, at: datetime) -> None:
        """Buffers a sign of life without a position (the socket's ping loop calls it)."""
        latest = self._latest.get(driver_id)
        if latest is None:
            self._latest[driver_id] = _Latest(None, None, None, None, None, at)
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
                moved = await self._write(latest, trail, implausible)
            except BaseException:
                self.flush_failures += 1
                self._requeue(latest, trail, implausible)
                raise
            finally:
                self._flush_started = None
                self._last_attempt = time.monotonic()
            self.flushes += 1
        told = await self._tell_riders(moved)
        return FlushResult(len(latest), len(trail), told)

    async def _write(
        self,
        latest: dict[uuid.UUID, _Latest],
        trail: list[_TrailPoint],
        implausible: dict[uuid.UUID, int],
    ) -> list[tuple[uuid.UUID, uuid.UUID, float, float]]:
        ids = list(latest)
        rows = [latest[driver_id] for driver_id in ids]
        async with self._engine.connect() as connection:
            result = await connection.execute(
                _FLUSH,
                {
                    "implausible_ids": list(implausible),
                    "implausible_counts": list(implausible.values()),
                    "driver_ids": ids,
                    "lats": [row.lat for row in rows],
                    "lons": [row.lon for row in rows],
                    "headings": [row.heading_deg for row in rows],
                    "speeds": [row.speed_mps for row in rows],
                    "reported": [row.reported_at for row in rows],
                    "seen": [row.seen_at for row in rows],
                    "anchored": [row.anchored_at for row in rows],
                    "grace_s": self._grace_s,
                    "shift_break_s": SHIFT_BREAK_S,
                    "trail_ids": [point.driver_id for point in trail],
                    "trail_lats": [point.lat for point in trail],
                    "trail_lons": [point.lon for point in trail],
                    "recorded": [point.recorded_at for point in trail],
                    "segment_starts": [point.segment_start for point in trail],
                },
            )
            return [(row[0], row[1], row[2], row[3]) for row in result]

    def _requeue(
        self,
        latest: dict[uuid.UUID, _Latest],
        trail: list[_TrailPoint],
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

    async def _tell_riders(self, moved: list[tuple[uuid.UUID, uuid.UUID, float, float]]) -> int:
        if not moved:
            return 0
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for trip_id, rider_id, lat, lon in moved:
                    frame = DriverLocationFrame(
                        type="driver_location", trip_id=trip_id, lat=lat, lon=lon
                    )
                    pipe.publish(rider_channel(rider_id), frame.encode())
                await pipe.execute()
        except Exception:  # the positions are stored; a missed live update is replaced by the next
            logger.warning("could not publish %d driver_location frames", len(moved), exc_info=True)
            return 0
        return len(moved)

    async def run(self, interval_s: float) -> None:
        """Flushes every `interval_s` until cancelled; a failed flush is retried next time (the
        buffer keeps what it could not write, bounded)."""
        failing = False
        self._periodic = True
        while True:
            await asyncio.sleep(interval_s)
            started = time.monotonic()
            try:
                await self.flush()
                if failing:
                    logger.info("driver positions are written again")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:  # once per outage, not four times a second
                    logger.warning("flushing driver positions failed (%s); buffering", exc)
                failing = True
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
        except Exception:
            logger.exception("the last flush of driver positions failed")
