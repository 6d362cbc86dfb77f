"""Backpressure's reading of how long a location frame waited before the service read it, and
the gap it asks of the drivers' sockets as the worker's flushes slow or speed up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.locations.admission import Pace, ReadingDelay
from dispatch.locations.ingest import (
    CONGESTED_AFTER_S,
    GAP_SPREAD,
    MAX_SHED_GAP_S,
    MIN_SHED_GAP_S,
    ONSET_SHARE,
    QUEUE_BASELINE_S,
    SHED_MEMORY_MARGIN,
    SHED_MEMORY_S,
    SHED_RELAX_S,
    SHED_WIDEN,
    SHED_WIDEN_AFTER_S,
    QueueClock,
    ShedGap,
    stamped_at,
)

NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    "raw",
    [
        '{"type":"location","lat":45.5,"lon":-73.5,"ts":"2026-11-30T12:00:00Z"}',
        '{"type": "location", "ts" : "2026-11-30T12:00:00+00:00", "lat": 45.5}',
        '{"ts":"2026-11-30T07:00:00-05:00","type":"location"}',
    ],
)
def test_a_frames_stamp_is_read_without_parsing_it(raw: str) -> None:
    assert stamped_at(raw) == NOON


@pytest.mark.parametrize(
    "raw",
    [
        '{"type":"location","lat":45.5,"lon":-73.5}',  # no stamp
        '{"type":"location","ts":"2026-11-30T12:00:00"}',  # no offset: the parsing refuses it
        '{"type":"location","ts":"yesterday at noon"}',
        '{"type":"location","ts":"2026-13-45T99:00:00Z"}',
        '{"type":"location","ts":12345}',
    ],
)
def test_a_frame_without_a_usable_stamp_has_none(raw: str) -> None:
    assert stamped_at(raw) is None


def test_the_wait_is_counted_from_the_sockets_usual_whatever_its_clock() -> None:
    clock = QueueClock()
    skew = 37.0  # the device's clock runs 37 s behind, its network takes 0.2 s
    assert clock.queued_s(NOON - skew, NOON + 0.2) == 0.0
    assert clock.queued_s(NOON + 1 - skew, NOON + 1.3) == pytest.approx(0.1)
    # a faster delivery lowers the usual, never makes a wait negative
    assert clock.queued_s(NOON + 2 - skew, NOON + 2.1) == 0.0
    assert clock.queued_s(NOON + 3 - skew, NOON + 6.1) == pytest.approx(3.0)


def test_the_usual_is_learned_again_after_the_clock_is_set() -> None:
    clock = QueueClock()
    assert clock.queued_s(NOON, NOON + 0.1) == 0.0
    # The device's clock is set 5 s back: its reports look 5 s late, until both windows of
    # the usual have passed.
    later = NOON + 10
    assert clock.queued_s(later - 5, later + 0.1) == pytest.approx(5.0)
    renewed = NOON + 2 * QUEUE_BASELINE_S + 1
    clock.queued_s(renewed - QUEUE_BASELINE_S - 5, renewed - QUEUE_BASELINE_S + 0.1)
    assert clock.queued_s(renewed - 5, renewed + 0.1) == pytest.approx(0.0)


class Worker:
    """A worker that writes up to `capacity` reports a second: its CPU is busy with the rate
    taken (30% for its sockets alone, all of it at capacity), a flush's time grows steeply as
    the rate nears it, and past it the backlog makes every flush slower than the last (the
    shape the overload benchmark shows, docs/performance.md)."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.backlog_s = 0.0

    def busy(self, rate: float) -> float:
        return min(1.0, 0.3 + 0.7 * rate / self.capacity)

    def flush_s(self, rate: float, seconds: float) -> float:
        load = rate / self.capacity
        if load < 0.95:  # the backlog is read through (what waited over 2 s is dropped)
            self.backlog_s = max(0.0, self.backlog_s - seconds)
            return 0.05 / (1 - load) + self.backlog_s
        self.backlog_s = min(2.0, self.backlog_s + seconds * (load - 0.95) * 2)
        return 1.0 + self.backlog_s


def run(
    gap: ShedGap, worker: Worker, *, drivers: int, every_s: float, seconds: int, start: float
) -> Iterator[tuple[float, float, float]]:
    """Drivers reporting every `every_s` unless asked for a wider gap (they heed it), the
    worker judged each second; yields (time, rate asked, flush time)."""
    for second in range(seconds):
        now = start + second
        rate = drivers / max(every_s, gap.gap_s)
        took = worker.flush_s(rate, 1.0)
        congested = took > CONGESTED_AFTER_S
        if gap.gap_s <= 0.0 and congested:  # the drivers' interval as the worker read them
            gap.start(drivers / min(rate, worker.capacity), now)
        else:
            gap.adjust(busy=worker.busy(rate), congested=congested, now=now)
        yield now, drivers / max(every_s, gap.gap_s), took


def test_shedding_starts_a_little_under_the_rate_the_drivers_were_read_at() -> None:
    gap = ShedGap()
    gap.start(1.0, now=0.0)
    assert gap.gap_s == pytest.approx(1.0 / ONSET_SHARE)
    gap = ShedGap()
    gap.start(20.0, now=0.0)  # apps that report rarely are not asked for less than the most
    assert gap.gap_s == MAX_SHED_GAP_S
    assert not ShedGap().adjust(busy=1.0, congested=True, now=0.0)


def test_each_socket_is_asked_for_its_own_share_of_the_gap_within_the_protocols_bounds() -> None:
    gap = ShedGap()
    assert gap.for_socket(1.0) == 0.0  # not shedding
    gap.start(2.0 * ONSET_SHARE, now=0.0)  # 2 s
    assert gap.for_socket(1 - GAP_SPREAD) == pytest.approx(2.0 * (1 - GAP_SPREAD))
    assert gap.for_socket(1 + GAP_SPREAD) == pytest.approx(2.0 * (1 + GAP_SPREAD))
    gap.start(MIN_SHED_GAP_S * ONSET_SHARE, now=0.0)
    assert gap.for_socket(1 - GAP_SPREAD) == MIN_SHED_GAP_S
    gap.start(MAX_SHED_GAP_S * ONSET_SHARE, now=0.0)
    assert gap.for_socket(1 + GAP_SPREAD) == MAX_SHED_GAP_S


def test_at_twice_its_capacity_the_worker_keeps_most_of_it_without_slow_flushes() -> None:
    """10,000 drivers offering 16,000 reports a second to a worker that writes 7,500: the gap
    settles where the worker takes most of its capacity, with few slow flushes, and the rate
    that overloaded it is not asked for again at once."""
    gap, worker = ShedGap(), Worker(capacity=7_500)
    seen = list(run(gap, worker, drivers=10_000, every_s=0.625, seconds=180, start=100.0))
    settled = seen[15:]
    taken = sorted(rate for _, rate, _ in settled)
    assert taken[len(taken) // 2] >= 0.8 * worker.capacity
    assert min(taken) >= 0.7 * worker.capacity
    slow = [took for _, _, took in settled if took > CONGESTED_AFTER_S]
    assert len(slow) <= 6, slow
    assert max(took for _, _, took in settled) < 5.0


def test_once_the_overload_passes_shedding_stops() -> None:
    gap, worker = ShedGap(), Worker(capacity=7_500)
    for _ in run(gap, worker, drivers=10_000, every_s=0.625, seconds=60, start=0.0):
        pass
    assert gap.gap_s > 0.0
    # the drivers back to one report each 2 s: 5,000 a second, well within the worker
    after = run(gap, worker, drivers=10_000, every_s=2.0, seconds=120, start=60.0)
    stopped = next((now for now, _, _ in after if gap.gap_s == 0.0), None)
    assert stopped is not None and stopped - 60.0 <= SHED_MEMORY_S + 30.0


def test_when_the_full_rate_comes_back_too_soon_shedding_lasts_longer() -> None:
    """Apps whose own rate the worker cannot take: each time shedding stops, their full rate
    overloads it again within moments. It starts again from the gap it stopped from, widened,
    not from the rate the apps still heeding the last ask report at, and holds twice as long
    each time before it stops again."""
    gap = ShedGap()
    now, started, stops = 0.0, 0.0, list[float]()
    gap.start(0.5, now)
    while len(stops) < 4:
        now += 0.25
        if gap.gap_s > 0.0:
            stopped_from = gap.gap_s
            gap.adjust(busy=0.3, congested=False, now=now)  # the worker idle while shedding
            if gap.gap_s == 0.0:
                stops.append(now - started)
        elif now - (started + stops[-1]) >= 3.0:  # 3 s of the full rate: congested again
            started = now
            gap.start(1.6, now)  # the apps still heed the last ask: 1.6 s measured
            assert gap.gap_s == pytest.approx(stopped_from * SHED_WIDEN)
    assert stops[0] <= SHED_MEMORY_S + SHED_RELAX_S
    assert [round(b / a) for a, b in zip(stops[1:], stops[2:], strict=False)] == [2, 2]
    assert stops[-1] >= 4 * SHED_MEMORY_S


def test_a_gap_that_overloaded_the_worker_is_not_asked_again_for_a_while() -> None:
    gap = ShedGap()
    gap.start(1.25 * ONSET_SHARE, now=0.0)  # 1.25 s
    # the backlog sent before the ask drains: no widening meanwhile
    assert not gap.adjust(busy=1.0, congested=True, now=SHED_WIDEN_AFTER_S - 0.5)
    widened_at = SHED_WIDEN_AFTER_S
    assert gap.adjust(busy=1.0, congested=True, now=widened_at)
    widened = gap.gap_s
    assert widened == pytest.approx(1.25 * SHED_WIDEN)
    # the worker idle from then on: the gap narrows, but not back within the margin of 1.25 s
    # while the overload is remembered
    now = widened_at
    while now < widened_at + SHED_MEMORY_S - 1:
        now += 0.25
        gap.adjust(busy=0.3, congested=False, now=now)
        assert gap.gap_s >= 1.25 * SHED_MEMORY_MARGIN - 1e-9
    assert gap.gap_s < widened
    while now < widened_at + SHED_MEMORY_S + 30:
        now += 0.25
        gap.adjust(busy=0.3, congested=False, now=now)
    assert gap.gap_s == 0.0  # idle after it: shedding stops


def test_near_capacity_the_gap_holds() -> None:
    gap = ShedGap()
    gap.start(1.25 * ONSET_SHARE, now=0.0)
    for tick in range(1, 400):  # 100 s of flushes keeping the worker busy, yet not congested
        assert not gap.adjust(busy=0.95, congested=False, now=tick / 4)
    assert gap.gap_s == pytest.approx(1.25)


def test_the_reading_delay_counts_each_socket_once_and_a_minority_cannot_move_it() -> None:
    delay = ReadingDelay(window_s=0.5, min_sockets=3, now=0.0)
    for n in range(1000):  # one socket's flood of late reports
        delay.note("flooder", 5.0, n * 0.0001)
    delay.note("a", 0.0, 0.2)
    delay.note("b", 0.1, 0.3)
    delay.note("c", 0.0, 0.6)  # closes the window: four sockets, one late
    assert delay.delay_s == 0.0 and delay.measured_at == 0.6
    for socket, late_s in (("flooder", 5.0), ("a", 3.0), ("b", 3.0)):
        delay.note(socket, late_s, 0.8)
    delay.note("c", 0.0, 1.2)  # most sockets late: the worker reads behind
    assert delay.delay_s == 3.0
    delay.note("flooder", 5.0, 1.3)
    delay.note("flooder", 5.0, 1.8)  # too few sockets to tell: the last figure stands
    assert delay.delay_s == 3.0 and delay.measured_at == 1.2


INTERVAL = timedelta(milliseconds=100)


@given(st.lists(st.integers(min_value=0, max_value=3_000), min_size=1, max_size=200))
def test_a_pace_lets_in_at_most_its_burst_and_its_rate_and_never_refuses_one_within_it(
    gaps_ms: list[int],
) -> None:
    pace = Pace()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    allowed: list[datetime] = []
    within = True  # every event so far came an interval or more after the one before
    for n, gap_ms in enumerate(gaps_ms):
        at += timedelta(milliseconds=gap_ms)
        within = within and (n == 0 or gap_ms >= 100)
        if pace.allows(at, interval=INTERVAL, burst=10):
            allowed.append(at)
        else:
            assert not within and len(allowed) >= 10
    # Over any stretch, no more than the burst and one per interval.
    for i, first in enumerate(allowed):
        for j in range(i, len(allowed)):
            span = allowed[j] - first
            assert j - i + 1 <= 10 + span // INTERVAL


def test_reports_a_second_apart_read_ten_at_once_are_all_let_in() -> None:
    pace = Pace()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert all(pace.allows(at, interval=INTERVAL, burst=10) for _ in range(10))
    assert not pace.allows(at, interval=INTERVAL, burst=10)
    assert pace.allows(at + INTERVAL, interval=INTERVAL, burst=10)
