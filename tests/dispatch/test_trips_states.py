"""The trip state machine and the meter, on their own (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coop.geo import haversine_m
from dispatch.states import (
    DRIVER_OPEN,
    RIDER_OPEN,
    TERMINAL,
    TRANSITIONS,
    Move,
    allowed,
    refusal,
)
from dispatch.trips import meter
from dispatch.trips.models import TripStatus

S = TripStatus


def test_the_happy_path_of_protocol_md() -> None:
    status = S.requested
    for move in (Move.assign, Move.arrive, Move.start, Move.complete):
        assert allowed(move, status)
        status = TRANSITIONS[move].target
    assert status is S.completed


@pytest.mark.parametrize(
    ("move", "sources"),
    [
        (Move.assign, {S.requested}),
        (Move.arrive, {S.assigned}),
        (Move.start, {S.arrived}),
        (Move.complete, {S.in_progress}),
        (Move.cancel, {S.requested, S.assigned, S.arrived}),
        (Move.expire, {S.requested}),
    ],
)
def test_each_move_is_allowed_from_exactly_its_sources(
    move: Move, sources: set[TripStatus]
) -> None:
    assert {status for status in S if allowed(move, status)} == sources


def test_terminal_statuses_have_no_way_out_and_every_status_is_classified() -> None:
    assert TERMINAL == {S.completed, S.cancelled, S.unfulfilled}
    assert not any(allowed(move, status) for move in Move for status in TERMINAL)
    assert RIDER_OPEN | TERMINAL == set(S) and not RIDER_OPEN & TERMINAL
    assert DRIVER_OPEN == RIDER_OPEN - {S.requested}
    # Every move lands on a status the table knows, and the stamps are real columns' names.
    assert {t.stamp for t in TRANSITIONS.values()} == {
        "assigned_at",
        "arrived_at",
        "started_at",
        "ended_at",
    }


def test_refusals_say_what_is_wrong() -> None:
    assert refusal(Move.start, S.assigned) == (
        "A trip can start only when arrived; this one is assigned"
    )
    assert refusal(Move.cancel, S.completed) == "The trip is already completed; it cannot cancel"


@given(st.lists(st.sampled_from(list(Move)), max_size=12))
def test_any_sequence_of_moves_ends_in_at_most_one_terminal_status(moves: list[Move]) -> None:
    status = S.requested
    terminal_reached = 0
    for move in moves:
        if allowed(move, status):
            status = TRANSITIONS[move].target
            terminal_reached += status in TERMINAL
    assert terminal_reached <= 1
    assert terminal_reached == (status in TERMINAL)


# --- the meter ------------------------------------------------------------------------------


def test_the_meter_sums_great_circle_legs_and_rounds_half_up() -> None:
    points = [(45.5017, -73.5673), (45.5225, -73.5800), (45.5400, -73.6000)]
    expected = haversine_m(*points[0], *points[1]) + haversine_m(*points[1], *points[2])
    assert meter.distance_m(points) == int(expected + 0.5)
    assert meter.distance_m([]) == meter.distance_m(points[:1]) == 0


def test_the_meter_counts_whole_seconds_and_never_negative() -> None:
    start = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert meter.duration_s(start, start + timedelta(seconds=599, milliseconds=500)) == 600
    assert meter.duration_s(start, start + timedelta(seconds=599, milliseconds=499)) == 599
    assert meter.duration_s(start, start - timedelta(seconds=3)) == 0


coordinate = st.tuples(
    st.floats(min_value=45.40, max_value=45.70), st.floats(min_value=-73.95, max_value=-73.45)
)


@given(st.lists(coordinate, min_size=2, max_size=30))
def test_the_metered_distance_is_never_shorter_than_the_straight_line(
    points: list[tuple[float, float]],
) -> None:
    straight = haversine_m(*points[0], *points[-1])
    assert meter.distance_m(points) >= int(straight + 0.5) - len(points)
