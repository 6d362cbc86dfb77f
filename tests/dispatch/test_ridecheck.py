"""The ride check's detectors (dispatch.safety.ridecheck), pure: each fires on its incident, none
fires on an ordinary trip, a detour around a block does not, and a watch survives a round trip
through JSON (the database) mid-episode."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bargaining.terms import load_founding_terms
from dispatch.safety import ridecheck
from dispatch.safety.ridecheck import Detector, Thresholds, Watch

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LIMITS = Thresholds.of(load_founding_terms().safety)
# 2 km due north of the start.
START = (45.5017, -73.5673)
DESTINATION = (45.5017 + 2000 / 111_195, -73.5673)


def north_of_start(metres: float, east_m: float = 0.0) -> tuple[float, float]:
    return (START[0] + metres / 111_195, START[1] + east_m / (111_195 * 0.7003))


def feed(watch: Watch, track: list[tuple[float, tuple[float, float]]]) -> list[ridecheck.Firing]:
    fired = []
    for seconds, (lat, lon) in track:
        fired += ridecheck.observe(
            watch,
            LIMITS,
            lat=lat,
            lon=lon,
            at=T0 + timedelta(seconds=seconds),
            destination=DESTINATION,
        )
    return fired


def drive(
    from_m: float, to_m: float, *, t0: float, speed_mps: float = 8.0, every_s: float = 4.0
) -> list[tuple[float, tuple[float, float]]]:
    """Positions every `every_s` driving north from `from_m` to `to_m` (south when smaller)."""
    steps = max(1, int(abs(to_m - from_m) / speed_mps / every_s))
    return [
        (t0 + i * every_s, north_of_start(from_m + (to_m - from_m) * i / steps))
        for i in range(steps + 1)
    ]


def test_founding_thresholds() -> None:
    assert (LIMITS.stop_radius_m, LIMITS.stop_alert_s, LIMITS.away_alert_s) == (25, 300, 180)
    assert (LIMITS.not_started_alert_s, LIMITS.end_distance_m) == (240, 500)


def test_an_ordinary_trip_fires_nothing() -> None:
    # Two red lights of 90 s on the way: stops, but short ones.
    track = drive(0, 800, t0=0)
    t = track[-1][0]
    track += [(t + s, north_of_start(800, 3.0)) for s in range(4, 90, 4)]
    track += drive(800, 1990, t0=t + 92)
    assert feed(Watch(), track) == []


def test_a_stop_longer_than_the_term_fires_once_within_a_report() -> None:
    watch = Watch()
    track = drive(0, 600, t0=0)
    began = track[-1][0]
    # GPS jitter of a few metres around one spot, for 10 minutes.
    jitter = [(0, 0), (6, -4), (-5, 3), (2, 7), (-7, -6)]
    track += [
        (began + s, north_of_start(600 + jitter[i % 5][0], jitter[i % 5][1]))
        for i, s in enumerate(range(4, 600, 4))
    ]
    fired = feed(watch, track)
    assert [f.detector for f in fired] == [Detector.stopped]
    assert LIMITS.stop_alert_s < fired[0].detail["stopped_s"] <= LIMITS.stop_alert_s + 4
    # Moving on re-arms it: a second long stop asks again.
    t = track[-1][0]
    again = drive(600, 900, t0=t + 4)
    t = again[-1][0]
    again += [(t + s, north_of_start(900)) for s in range(4, 320, 4)]
    assert [f.detector for f in feed(watch, again)] == [Detector.stopped]


def test_a_stop_just_at_the_term_does_not_fire() -> None:
    track = [(float(s), north_of_start(100)) for s in range(0, 301, 4)] + [
        (300.0, north_of_start(100))
    ]
    assert feed(Watch(), track) == []


def test_moving_away_for_longer_than_the_term_fires() -> None:
    watch = Watch()
    track = drive(0, 1000, t0=0)
    t = track[-1][0]
    # Then back south, away from the destination, for 5 minutes at 8 m/s.
    away = drive(1000, 1000 - 8 * 300, t0=t + 4)
    fired = feed(watch, track + away)
    assert [f.detector for f in fired] == [Detector.away]
    turned_at = t + 4
    # Counted from leaving the band of AWAY_EXIT_M: within the term plus that stretch's time.
    assert fired[0].at - T0 <= timedelta(
        seconds=turned_at + LIMITS.away_alert_s + ridecheck.AWAY_EXIT_M / 8 + 8
    )
    assert fired[0].detail["farther_m"] > ridecheck.AWAY_ENTER_M


def test_a_detour_around_a_block_does_not_fire() -> None:
    # A missed turn: 250 m back and around, slowly (3 minutes of it), then on to the end.
    track = drive(0, 1000, t0=0)
    t = track[-1][0]
    detour = drive(1000, 750, t0=t + 4, speed_mps=2.0)
    t = detour[-1][0]
    back = drive(750, 1990, t0=t + 4)
    assert feed(Watch(), track + detour + back) == []


def test_hysteresis_a_car_hovering_at_the_band_does_not_fire() -> None:
    # Around the block again and again, 150 to 280 m back each time, for 15 minutes: never past
    # AWAY_ENTER_M, so never a drive away.
    track = drive(0, 1000, t0=0)
    t = track[-1][0] + 4
    for loop in range(6):
        back = drive(1000, 1000 - 150 - 25 * loop, t0=t, speed_mps=1.5)
        t = back[-1][0] + 4
        forth = drive(1000 - 150 - 25 * loop, 1000, t0=t, speed_mps=1.5)
        t = forth[-1][0] + 4
        track += back + forth
    assert t > 900
    assert feed(Watch(), track) == []


def test_not_started_fires_after_the_term_and_once() -> None:
    watch = Watch()
    arrived = T0
    assert (
        ridecheck.not_started(
            watch, LIMITS, arrived_at=arrived, now=T0 + timedelta(seconds=240), position=START
        )
        is None
    )
    fired = ridecheck.not_started(
        watch, LIMITS, arrived_at=arrived, now=T0 + timedelta(seconds=245), position=START
    )
    assert fired is not None and fired.detector is Detector.not_started
    assert (
        ridecheck.not_started(
            watch, LIMITS, arrived_at=arrived, now=T0 + timedelta(seconds=400), position=START
        )
        is None
    )


def test_an_end_far_from_the_destination_fires_and_a_near_one_does_not() -> None:
    near = north_of_start(1990 - 480)  # 490 m short
    assert ridecheck.ended(Watch(), LIMITS, at=T0, position=near, destination=DESTINATION) is None
    far = north_of_start(1000)
    fired = ridecheck.ended(Watch(), LIMITS, at=T0, position=far, destination=DESTINATION)
    assert fired is not None and fired.detector is Detector.end_far
    assert fired.detail["from_destination_m"] == 1000
    assert ridecheck.ended(Watch(), LIMITS, at=T0, position=None, destination=DESTINATION) is None


def test_a_watch_survives_json_mid_stop() -> None:
    track = [(float(s), north_of_start(100)) for s in range(0, 200, 4)]
    watch = Watch()
    assert feed(watch, track) == []
    restored = Watch.from_json(json.loads(json.dumps(watch.to_json())))
    assert restored == watch
    later = [(float(s), north_of_start(100)) for s in range(200, 320, 4)]
    assert [f.detector for f in feed(restored, later)] == [Detector.stopped]


def test_a_late_position_is_ignored() -> None:
    watch = Watch()
    feed(watch, [(10.0, north_of_start(0))])
    assert feed(watch, [(5.0, north_of_start(900))]) == []
    assert watch.last_at == T0 + timedelta(seconds=10)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-40, 40), st.floats(-40, 40), st.floats(0.5, 6.0)),
        min_size=2,
        max_size=120,
    )
)
def test_a_car_making_steady_progress_never_fires(moves: list[tuple[float, float, float]]) -> None:
    # Whatever the jitter and report gaps, a car that gains at least 20 m on the destination at
    # every report is neither stopped nor away.
    watch, t, progress = Watch(), 0.0, 0.0
    for north_jitter, east_jitter, gap_s in moves:
        t += gap_s
        progress += 20 + abs(north_jitter)
        lat, lon = north_of_start(min(progress, 1900) if progress < 1900 else 1900, east_jitter)
        fired = ridecheck.observe(
            watch, LIMITS, lat=lat, lon=lon, at=T0 + timedelta(seconds=t), destination=DESTINATION
        )
        assert [f for f in fired if f.detector is Detector.away] == []


def test_the_terms_refuse_a_not_started_check_the_no_show_would_pre_empt() -> None:
    from pydantic import ValidationError

    from bargaining.terms import Terms
    from tests.bargaining.strategies import founding_wire

    wire = founding_wire()
    wire["safety"]["not_started_alert_s"] = wire["dispatch"]["no_show_wait_s"]
    try:
        Terms.model_validate(wire)
    except ValidationError as refused:
        [error] = refused.errors()
        assert error["loc"] == ("safety", "not_started_alert_s")
        assert "dispatch.no_show_wait_s (300)" in error["msg"]
    else:
        raise AssertionError("a not_started_alert_s of no_show_wait_s was accepted")
    for term, bad in (("stop_radius_m", 2), ("stop_alert_s", 0), ("end_distance_m", 10)):
        wire = founding_wire()
        wire["safety"][term] = bad
        try:
            Terms.model_validate(wire)
        except ValidationError as refused:
            assert {e["loc"] for e in refused.errors()} == {("safety", term)}
        else:
            raise AssertionError(f"safety.{term} = {bad} was accepted")
    wire = founding_wire()
    wire["safety"]["not_started_alert_s"] = 299
    assert Terms.model_validate(wire).safety.not_started_alert_s == 299


def test_one_wild_gps_fix_does_not_end_a_stop() -> None:
    # Stopped for 6 minutes; every minute one fix 60 m off (a street canyon): still one stop.
    track = [
        (float(s), north_of_start(100 + (60 if s % 60 == 0 and s else 0))) for s in range(0, 364, 4)
    ]
    fired = feed(Watch(), track)
    assert [f.detector for f in fired] == [Detector.stopped]
    assert fired[0].detail["stopped_s"] <= LIMITS.stop_alert_s + 8


def test_a_car_that_moves_on_and_stops_counts_from_its_new_spot() -> None:
    watch = Watch()
    track = [(float(s), north_of_start(100)) for s in range(0, 200, 4)]
    # Two fixes out in a row: it moved; the new stop counts from the first of them.
    track += [(float(s), north_of_start(300)) for s in range(200, 500, 4)]
    fired = feed(watch, track)
    # From 200 s: more than 300 s stopped first at the fix of 504 s (beyond the track: none).
    assert fired == []
    more = [(float(s), north_of_start(300)) for s in range(500, 520, 4)]
    [late] = feed(watch, more)
    assert late.at == T0 + timedelta(seconds=504)
