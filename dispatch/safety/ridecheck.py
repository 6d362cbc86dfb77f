"""The ride check's detectors (docs/safety.md, "Ride check"): pure, no I/O, no clock of their own.

A `Watch` is what is remembered of one trip; it is fed the trip's positions with their times
(`observe`) and asked at the moments that matter (`not_started`, `ended`), and answers the
`Firing`s: each one becomes a "Everything OK?" question to both parties. Every threshold is a
term of the agreement (`SafetyTerms`); only the hysteresis of the drive away is the code's, for
the reason given at `AWAY_ENTER_M`. A detector fires once per episode, and re-arms when the
episode ends (the car moves on, comes back towards the destination), so one long stop asks once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from bargaining.terms import SafetyTerms
from coop.geo import haversine_m


class Detector(enum.StrEnum):
    stopped = "stopped"  # within stop_radius_m of one spot for longer than stop_alert_s
    away = "away"  # the distance left growing for longer than away_alert_s
    not_started = "not_started"  # arrived, not started within not_started_alert_s
    end_far = "end_far"  # completed farther than end_distance_m from the destination


# The drive away, with hysteresis. The distance left is compared with the least it has been
# this trip: an episode begins when it exceeds that least by AWAY_EXIT_M, ends when it comes back
# within AWAY_EXIT_M, and fires once it has lasted away_alert_s with the car more than
# AWAY_ENTER_M farther than its best. Going around a block (one-way streets, a missed turn) adds
# at most a block or two, 80 to 250 m in Montréal and Manhattan, for a minute or so: it never
# reaches AWAY_ENTER_M, and a longer detour must also last away_alert_s. Measured in
# docs/safety.md ("Ride check"): no replayed ordinary trip fires with these values.
AWAY_ENTER_M = 300.0
AWAY_EXIT_M = 100.0
# A stop ends when this many positions in a row are out of its circle: one or two may be the GPS
# (a street canyon throws a fix 30 m and more), and 12 s of a car's moving costs nothing here.
STOP_LEFT_AFTER = 3


@dataclass(frozen=True)
class Thresholds:
    """The agreement's ride-check terms the detectors use."""

    stop_radius_m: float
    stop_alert_s: float
    away_alert_s: float
    not_started_alert_s: float
    end_distance_m: float
    # The code's, not terms: the drive away's hysteresis (measured in docs/safety.md).
    away_exit_m: float = AWAY_EXIT_M
    away_enter_m: float = AWAY_ENTER_M

    @classmethod
    def of(cls, terms: SafetyTerms) -> Thresholds:
        return cls(
            stop_radius_m=terms.stop_radius_m,
            stop_alert_s=terms.stop_alert_s,
            away_alert_s=terms.away_alert_s,
            not_started_alert_s=terms.not_started_alert_s,
            end_distance_m=terms.end_distance_m,
        )


@dataclass(frozen=True)
class Firing:
    """A detector fired: what, when, where, and the figures that made it fire."""

    detector: Detector
    at: datetime
    lat: float | None
    lon: float | None
    detail: dict[str, float]


@dataclass
class Watch:
    """What the detectors remember of one trip; `to_json`/`from_json` keep it across restarts."""

    # The current stop: where it began (its first position) and when.
    stop_lat: float | None = None
    stop_lon: float | None = None
    stop_since: datetime | None = None
    stop_fired: bool = False
    # The stop's spot is the mean of its positions (the GPS scatters them around the car), over
    # this many so far.
    stop_fixes: int = 0
    # The positions in a row out of the stop's circle, not yet enough to end it.
    out: list[tuple[float, float, datetime]] = field(default_factory=list)
    # The least distance left to the destination so far, and the current drive away.
    best_m: float | None = None
    away_since: datetime | None = None
    away_fired: bool = False
    # The newest position observed (older ones arriving late are ignored).
    last_lat: float | None = None
    last_lon: float | None = None
    last_at: datetime | None = None
    not_started_fired: bool = False
    end_fired: bool = False
    fired: list[str] = field(default_factory=list)  # every detector that fired, in order

    def to_json(self) -> dict[str, Any]:
        # By hand, not dataclasses.asdict: the sweep saves every watched trip's at each run.
        value: dict[str, Any] = {name: getattr(self, name) for name in _PLAIN_FIELDS}
        for name in _STAMP_FIELDS:
            stamp = getattr(self, name)
            value[name] = None if stamp is None else stamp.isoformat()
        value["out"] = [[lat, lon, at.isoformat()] for lat, lon, at in self.out]
        value["fired"] = list(self.fired)
        return value

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Watch:
        values = dict(value)
        for name in _STAMP_FIELDS:
            stamp = values.get(name)
            values[name] = None if stamp is None else datetime.fromisoformat(stamp)
        values["out"] = [(lat, lon, datetime.fromisoformat(at)) for lat, lon, at in value["out"]]
        return cls(**values)

    def _fire(self, firing: Firing) -> Firing:
        self.fired.append(firing.detector.value)
        return firing


_STAMP_FIELDS = ("stop_since", "away_since", "last_at")
_PLAIN_FIELDS = tuple(
    f.name for f in fields(Watch) if f.name not in {*_STAMP_FIELDS, "out", "fired"}
)


def observe(
    watch: Watch,
    limits: Thresholds,
    *,
    lat: float,
    lon: float,
    at: datetime,
    destination: tuple[float, float],
) -> list[Firing]:
    """Feeds one position of a trip under way; answers what fired with it."""
    if watch.last_at is not None and at < watch.last_at:
        return []  # a late report: the newer position already stands
    watch.last_lat, watch.last_lon, watch.last_at = lat, lon, at
    fired: list[Firing] = []
    stopped = _stopped(watch, limits, lat, lon, at)
    if stopped is not None:
        fired.append(watch._fire(stopped))
    away = _away(watch, limits, lat, lon, at, destination)
    if away is not None:
        fired.append(watch._fire(away))
    return fired


def _stopped(
    watch: Watch, limits: Thresholds, lat: float, lon: float, at: datetime
) -> Firing | None:
    inside = (
        watch.stop_lat is not None
        and watch.stop_lon is not None
        and haversine_m(watch.stop_lat, watch.stop_lon, lat, lon) <= limits.stop_radius_m
    )
    if not inside:
        if watch.stop_since is not None and len(watch.out) < STOP_LEFT_AFTER - 1:
            watch.out.append((lat, lon, at))
            return None
        # Moved on (or the first position): the new stop began at the first of the positions
        # out that are where this one is.
        since = at
        for out_lat, out_lon, out_at in watch.out:
            if haversine_m(out_lat, out_lon, lat, lon) <= limits.stop_radius_m:
                since = out_at
                break
        watch.stop_lat, watch.stop_lon, watch.stop_since = lat, lon, since
        watch.stop_fixes = 1
        watch.out = []
        watch.stop_fired = False
        return None
    assert watch.stop_lat is not None and watch.stop_lon is not None
    assert watch.stop_since is not None
    watch.out = []  # a fix or two out, then back: the GPS, not a move
    watch.stop_fixes += 1
    watch.stop_lat += (lat - watch.stop_lat) / watch.stop_fixes
    watch.stop_lon += (lon - watch.stop_lon) / watch.stop_fixes
    stopped_s = (at - watch.stop_since).total_seconds()
    if watch.stop_fired or stopped_s <= limits.stop_alert_s:
        return None
    watch.stop_fired = True
    return Firing(Detector.stopped, at, lat, lon, {"stopped_s": round(stopped_s, 1)})


def _away(
    watch: Watch,
    limits: Thresholds,
    lat: float,
    lon: float,
    at: datetime,
    destination: tuple[float, float],
) -> Firing | None:
    left_m = haversine_m(lat, lon, destination[0], destination[1])
    if watch.best_m is None or left_m < watch.best_m:
        watch.best_m = left_m
    gained_m = left_m - watch.best_m
    if gained_m <= limits.away_exit_m:
        watch.away_since = None
        watch.away_fired = False
        return None
    if watch.away_since is None:
        watch.away_since = at
    away_s = (at - watch.away_since).total_seconds()
    if watch.away_fired or gained_m <= limits.away_enter_m or away_s <= limits.away_alert_s:
        return None
    watch.away_fired = True
    return Firing(
        Detector.away,
        at,
        lat,
        lon,
        {"away_s": round(away_s, 1), "farther_m": round(gained_m), "left_m": round(left_m)},
    )


def not_started(
    watch: Watch,
    limits: Thresholds,
    *,
    arrived_at: datetime,
    now: datetime,
    position: tuple[float, float] | None,
) -> Firing | None:
    """A trip still `arrived` at `now`: fires once not_started_alert_s after the arrival."""
    waited_s = (now - arrived_at).total_seconds()
    if watch.not_started_fired or waited_s <= limits.not_started_alert_s:
        return None
    watch.not_started_fired = True
    lat, lon = position if position is not None else (None, None)
    return watch._fire(
        Firing(Detector.not_started, now, lat, lon, {"waited_s": round(waited_s, 1)})
    )


def ended(
    watch: Watch,
    limits: Thresholds,
    *,
    at: datetime,
    position: tuple[float, float] | None,
    destination: tuple[float, float],
) -> Firing | None:
    """A trip completed at `at`, its last position `position` (None: none known, nothing to
    compare): fires when that is farther than end_distance_m from the destination."""
    if watch.end_fired or position is None:
        return None
    off_m = haversine_m(position[0], position[1], destination[0], destination[1])
    if off_m <= limits.end_distance_m:
        return None
    watch.end_fired = True
    return watch._fire(
        Firing(Detector.end_far, at, position[0], position[1], {"from_destination_m": round(off_m)})
    )
