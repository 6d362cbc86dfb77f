"""Backpressure's reading of how long a location frame waited before the service read it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatch.locations.ingest import QUEUE_BASELINE_S, QueueClock, stamped_at

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
