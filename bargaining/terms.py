"""The terms of the collective agreement: a strict schema with the invariants of docs/agreement.md.

Unknown fields are rejected everywhere (a typo must not pass silently) and every failure names its
field as a dotted path (`fares.standard.per_km`) with the reason. Amounts are `Decimal`, given as
decimal strings; a JSON or YAML number with a fraction is refused, since a binary float cannot hold
"1.05" exactly. A `Terms` value that exists has passed every check, so pricing never re-checks it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from coop.messages import N_
from coop.money import CENT, refuse_float

FOUNDING_AGREEMENT_PATH = Path(__file__).resolve().parent / "founding_agreement.yaml"


def money_str(value: Decimal) -> str:
    """Two places at least ("3.50"), more only when the amount really has them ("0.0125")."""
    if value == 0:
        return "0.00"
    if value.normalize().as_tuple().exponent >= -2:  # type: ignore[operator]
        return f"{value.quantize(CENT):f}"
    return f"{value.normalize():f}"


def plain_str(value: Decimal) -> str:
    """A decimal without trailing zeros or exponent: "8", "0.2", "4.7"."""
    if value == 0:
        return "0"
    return f"{value.normalize():f}"


_NO_FLOAT = BeforeValidator(refuse_float)
_AS_MONEY = PlainSerializer(money_str, return_type=str, when_used="json")
_AS_PLAIN = PlainSerializer(plain_str, return_type=str, when_used="json")

# An amount charged or paid as it is: whole cents.
Money = Annotated[
    Decimal, _NO_FLOAT, Field(ge=0, max_digits=9, decimal_places=2, allow_inf_nan=False), _AS_MONEY
]
# A rate multiplied by kilometres or minutes before rounding: up to four places.
Rate = Annotated[
    Decimal, _NO_FLOAT, Field(ge=0, max_digits=9, decimal_places=4, allow_inf_nan=False), _AS_MONEY
]
Percent = Annotated[
    Decimal,
    _NO_FLOAT,
    Field(ge=0, le=100, max_digits=5, decimal_places=2, allow_inf_nan=False),
    _AS_PLAIN,
]
# Below 100: at 100 no proposal could ever pass and the agreement could never change again.
ApprovalPercent = Annotated[
    Decimal,
    _NO_FLOAT,
    Field(ge=0, lt=100, max_digits=5, decimal_places=2, allow_inf_nan=False),
    _AS_PLAIN,
]
Stars = Annotated[
    Decimal,
    _NO_FLOAT,
    Field(ge=1, le=5, max_digits=3, decimal_places=2, allow_inf_nan=False),
    _AS_PLAIN,
]
Weight = Annotated[
    Decimal,
    _NO_FLOAT,
    Field(ge=0, le=1000, max_digits=8, decimal_places=4, allow_inf_nan=False),
    _AS_PLAIN,
]

ServiceClass = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Tag = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Days = Annotated[int, Field(strict=True, ge=1, le=3_650)]
Count = Annotated[int, Field(strict=True, ge=0, le=100_000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# How far above its quote a metered fare may go, in percent of the quote (0: never above it).
OverQuotePercent = Annotated[
    Decimal,
    _NO_FLOAT,
    Field(ge=0, le=1000, max_digits=6, decimal_places=2, allow_inf_nan=False),
    _AS_PLAIN,
]


class FareClass(_Strict):
    base: Money
    per_km: Rate
    per_minute: Rate
    minimum: Money
    # The rider's protection against a runaway meter: a fare above the quote by more than this
    # is charged at quote x (1 + percent / 100), and the trip says it was capped and why.
    max_over_quote_percent: OverQuotePercent


class Commission(_Strict):
    percent: Percent
    cap: Money | None = None  # optional: the most the co-op takes from one trip


class DriverFloor(_Strict):
    per_km: Rate
    per_minute: Rate


class Cancellation(_Strict):
    free_period_s: Annotated[int, Field(strict=True, ge=0, le=86_400)]
    fee: Money


# The quotes of versions ratified before `dispatch.quote_valid_s` existed stay open this long.
QUOTE_VALID_S_BEFORE_TERM = 300


class DispatchTerms(_Strict):
    # The bounds keep the service working (a zero batch interval would spin the matcher).
    batch_interval_ms: Annotated[int, Field(strict=True, ge=100, le=60_000)]
    offer_timeout_s: Annotated[int, Field(strict=True, ge=1, le=3_600)]
    max_pickup_distance_m: Annotated[int, Field(strict=True, ge=1, le=200_000)]
    max_wait_s: Annotated[int, Field(strict=True, ge=1, le=86_400)]
    fairness_weight: Weight
    # A position implying a faster move than this since the last one is not believed: it is
    # neither metered nor used as the driver's position (docs/dispatch.md, "The meter").
    max_plausible_speed_kmh: Annotated[int, Field(strict=True, ge=10, le=1_000)]
    # `arrived` is refused unless the driver's last position is this close to the pickup.
    arrival_radius_m: Annotated[int, Field(strict=True, ge=10, le=5_000)]
    # An `arrived` trip whose ride has not started this long after the arrival ends as the
    # rider's no-show (the cancellation fee's rules apply); also the most waiting at a pickup
    # that counts as engaged time toward the hourly floor (docs/pay.md).
    no_show_wait_s: Annotated[int, Field(strict=True, ge=60, le=3_600)]
    # How far a pickup or a ride may run over its estimate (the offer's pickup_eta_s, the quote's
    # duration_s): estimate x (1 + overrun_percent / 100) + overrun_s. A ride still under way
    # past that is ended for a person to review, and engaged time beyond it does not count.
    overrun_percent: Annotated[int, Field(strict=True, ge=0, le=1_000)]
    overrun_s: Annotated[int, Field(strict=True, ge=0, le=7_200)]
    # Between full batches, an early batch every this many ms offers the requests nobody else
    # competes for (docs/dispatch.md). Absent (versions ratified before it existed): no early
    # batches, every request waits for the full batch_interval_ms as those versions said.
    min_batch_interval_ms: Annotated[int, Field(strict=True, ge=100, le=60_000)] | None = None
    # Optional: the most the fairness credit is worth, in seconds of pickup ETA (absent: bounded
    # only by the one-hour idle cap, as in the versions before it existed).
    fairness_credit_max_s: Annotated[int, Field(strict=True, ge=0, le=3_600)] | None = None
    # Optional: the most the earnings credit is worth, in seconds of pickup ETA, given in full to
    # a driver whose shift earnings per online hour are far below the median of the drivers
    # online (absent: no earnings credit, as in the versions before it existed).
    # Up to 20,000 s: the unbounded, fare-aware policies docs/fairness.md measures use up to 7,200.
    earnings_credit_max_s: Annotated[int, Field(strict=True, ge=0, le=20_000)] | None = None
    # Optional: a request's cost falls by one second per second it has waited, up to this many
    # (absent: no credit for waiting, as in the versions before it existed).
    rider_wait_credit_max_s: Annotated[int, Field(strict=True, ge=0, le=3_600)] | None = None
    # How long a quote stays open to the rider's consent (its maximum price, docs/jurisdiction.md);
    # absent (versions ratified before it existed): QUOTE_VALID_S_BEFORE_TERM.
    quote_valid_s: Annotated[int, Field(strict=True, ge=30, le=3_600)] | None = None
    # Optional: the earnings credit scaled by the request's quote against the median quote of the
    # region's requests of the last hour, at most this many times (the dearest trips go first to
    # the drivers furthest below the median rate); absent: not scaled, as before it existed.
    earnings_credit_fare_scale_max: (
        Annotated[
            Decimal,
            _NO_FLOAT,
            Field(ge=1, le=10, max_digits=4, decimal_places=2, allow_inf_nan=False),
            _AS_PLAIN,
        ]
        | None
    ) = None
    # Optional: a driver above the median rate gets the mirror of the earnings credit, a penalty
    # down to -earnings_credit_max_s (under fairness_credit_max_s the whole credit then spans
    # -half to +half of that bound); absent or false: no penalty, as before it existed.
    earnings_penalty_above_median: Annotated[bool, Field(strict=True)] | None = None
    # Optional: how many candidate drivers each request is weighed against, nearest first (0:
    # every suitable free driver within max_pickup_distance_m); absent: the service's setting
    # COOP_MATCHER_CANDIDATES_K (8), as before it existed.
    candidates_per_request: Annotated[int, Field(strict=True, ge=0, le=100)] | None = None

    @model_serializer(mode="wrap")
    def _omit_unset_younger_terms(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Left out when unset, over HTTP and in the canonical form alike: a version stored before
        # the term existed keeps its bytes and its hash, and reads the same as it was written.
        data: dict[str, Any] = handler(self)
        for younger in (
            "min_batch_interval_ms",
            "fairness_credit_max_s",
            "earnings_credit_max_s",
            "rider_wait_credit_max_s",
            "quote_valid_s",
            "earnings_credit_fare_scale_max",
            "earnings_penalty_above_median",
            "candidates_per_request",
        ):
            if younger in data and data[younger] is None:
                del data[younger]
        return data


class ReputationTerms(_Strict):
    window: Annotated[int, Field(strict=True, ge=1, le=100_000)]
    min_ratings: Count
    prior_mean: Stars
    prior_weight: Count
    rating_window_days: Days
    appeal_window_days: Days
    review_due_days: Days
    support_threshold: Stars
    excluded_tags: Annotated[list[Tag], Field(max_length=100)]
    # A rating shows to its driver once this many newer ratings of them exist (0: at once).
    reveal_after_ratings: Annotated[int, Field(strict=True, ge=0, le=1_000)]


class Governance(_Strict):
    quorum_percent: Percent
    approval_percent: ApprovalPercent
    # The longest a vote may run: a proposal closing later is refused, so no vote (and no
    # dividend's days held by one) can be kept open for years.
    max_voting_days: Annotated[int, Field(strict=True, ge=1, le=365)]


# The Monday from which 14-day pay periods are counted: a period starts on every Monday a whole
# number of periods from it (pay.periods; a dividend's period is a run of them).
PAY_PERIOD_ANCHOR = date(2024, 1, 1)


class PayTerms(_Strict):
    """Pay periods and the hourly floor over a period (docs/pay.md)."""

    # 7 or 14 days; periods start on a Monday at 00:00 in `timezone`.
    period_days: Annotated[
        int, Field(strict=True, ge=7, le=14, description="7 or 14 only; periods start on Mondays")
    ]
    timezone: Annotated[
        str,
        StringConstraints(min_length=1, max_length=64),
        Field(description="an IANA time zone name"),
    ]
    # The least a driver earns per engaged hour over a period; topped up at its close.
    engaged_floor_per_hour: Money

    @field_validator("period_days")
    @classmethod
    def _week_or_two(cls, value: int) -> int:
        if value not in (7, 14):
            raise PydanticCustomError("period_days", N_("A pay period is 7 or 14 days"))
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in _zones():
            raise PydanticCustomError(
                "timezone", N_("Not a known IANA time zone name (such as America/Toronto)")
            )
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - listed zones load
            raise PydanticCustomError("timezone", N_("This time zone cannot be loaded")) from exc
        return value


def _zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


_ZONES: frozenset[str] | None = None

PatronageBasis = Literal["engaged_seconds", "driver_earnings", "trips"]


class PatronageTerms(_Strict):
    """How a surplus returned to members is measured and how much of it the co-op keeps."""

    basis: PatronageBasis
    # The share of a surplus kept as the co-op's indivisible reserve.
    reserve_percent: Percent
    # The longest period one dividend may cover (53 weeks: a fiscal year of whole pay periods).
    max_period_days: Annotated[int, Field(strict=True, ge=7, le=1_096)]


PinPolicy = Literal["always", "night", "never"]
Seconds = Annotated[int, Field(strict=True, ge=1, le=86_400)]
ClockTime = Annotated[
    str,
    StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"),
    Field(description="HH:MM, 24-hour, in the jurisdiction's time zone"),
]


class SafetyTerms(_Strict):
    """Riders' and drivers' safety (docs/safety.md): the PIN at pickup, the night window, how
    fast a person answers an alert and when the ride check asks "Everything OK?"."""

    # The PIN policy of a rider who has not chosen one: always, at night only, or never.
    pin_default: PinPolicy
    # The night, for the PIN and auto-share policies "night": from night_starts to night_ends
    # (across midnight when night_starts is later), in the jurisdiction's time zone.
    night_starts: ClockTime
    night_ends: ClockTime
    # The co-op's promise: a person acknowledges an alert within this many seconds (counted and
    # reported on /transparency, never enforced against a person).
    ack_within_s: Annotated[int, Field(strict=True, ge=10, le=3_600)]
    # Ride check: a car within stop_radius_m of one spot for longer than stop_alert_s mid-trip.
    stop_radius_m: Annotated[int, Field(strict=True, ge=5, le=500)]
    stop_alert_s: Seconds
    # Ride check: the distance left to the destination growing for longer than away_alert_s.
    away_alert_s: Seconds
    # Ride check: a trip not started this long after the driver's arrival.
    not_started_alert_s: Seconds
    # Ride check: a trip completed farther than this from its destination.
    end_distance_m: Annotated[int, Field(strict=True, ge=50, le=50_000)]
    # A check nobody answers within this many seconds goes to the operators' queue.
    check_answer_s: Annotated[int, Field(strict=True, ge=10, le=3_600)]


class Terms(_Strict):
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    fares: Annotated[dict[ServiceClass, FareClass], Field(min_length=1, max_length=32)]
    commission: Commission
    driver_floor: DriverFloor
    cancellation: Cancellation
    dispatch: DispatchTerms
    reputation: ReputationTerms
    governance: Governance
    pay: PayTerms
    patronage: PatronageTerms
    safety: SafetyTerms

    @model_validator(mode="after")
    def _invariants(self) -> Terms:
        problems = invariant_violations(self)
        if problems:
            raise ValidationError.from_exception_data(
                "Terms",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("terms_invariant", reason),
                        loc=location,
                        input=value,
                    )
                    for location, reason, value in problems
                ],
            )
        return self


AT_LEAST_FLOOR = N_(
    "Must be at least {other} ({bound}), so that every fare covers the drivers' floor"
)


def invariant_violations(terms: Terms) -> list[tuple[tuple[str, ...], str, object]]:
    """The rules between fields: (location, reason, value) for each one broken."""
    problems: list[tuple[tuple[str, ...], str, object]] = []
    if "standard" not in terms.fares:
        problems.append(
            (("fares", "standard"), N_("The 'standard' service class is required"), None)
        )
    floor = terms.driver_floor
    for name, fare in terms.fares.items():
        if fare.per_km < floor.per_km:
            problems.append(
                (
                    ("fares", name, "per_km"),
                    AT_LEAST_FLOOR.format(
                        other="driver_floor.per_km", bound=money_str(floor.per_km)
                    ),
                    money_str(fare.per_km),
                )
            )
        if fare.per_minute < floor.per_minute:
            problems.append(
                (
                    ("fares", name, "per_minute"),
                    AT_LEAST_FLOOR.format(
                        other="driver_floor.per_minute", bound=money_str(floor.per_minute)
                    ),
                    money_str(fare.per_minute),
                )
            )
    if terms.reputation.min_ratings > terms.reputation.window:
        problems.append(
            (
                ("reputation", "min_ratings"),
                N_(
                    "Must not exceed reputation.window ({window}), or no score could ever be shown"
                ).format(window=terms.reputation.window),
                terms.reputation.min_ratings,
            )
        )
    tags = terms.reputation.excluded_tags
    if len(set(tags)) != len(tags):
        problems.append(
            (("reputation", "excluded_tags"), N_("Each tag may appear only once"), list(tags))
        )
    if terms.dispatch.max_wait_s < terms.dispatch.offer_timeout_s:
        problems.append(
            (
                ("dispatch", "max_wait_s"),
                N_(
                    "Must be at least dispatch.offer_timeout_s ({timeout}), or a request would end "
                    "before its first offer could be answered"
                ).format(timeout=terms.dispatch.offer_timeout_s),
                terms.dispatch.max_wait_s,
            )
        )
    if terms.safety.not_started_alert_s >= terms.dispatch.no_show_wait_s:
        problems.append(
            (
                ("safety", "not_started_alert_s"),
                N_(
                    "Must be less than dispatch.no_show_wait_s ({wait}), or the trip is cancelled "
                    "as a no-show before the ride check could ask"
                ).format(wait=terms.dispatch.no_show_wait_s),
                terms.safety.not_started_alert_s,
            )
        )
    early = terms.dispatch.min_batch_interval_ms
    if early is not None and early > terms.dispatch.batch_interval_ms:
        problems.append(
            (
                ("dispatch", "min_batch_interval_ms"),
                N_(
                    "Must not exceed dispatch.batch_interval_ms ({interval}), the longest a "
                    "request waits for a batch"
                ).format(interval=terms.dispatch.batch_interval_ms),
                early,
            )
        )
    problems.extend(_earnings_credit_violations(terms.dispatch))
    return problems


def _earnings_credit_violations(
    dispatch: DispatchTerms,
) -> list[tuple[tuple[str, ...], str, object]]:
    """The earnings credit's scaling and penalty mean nothing without the credit itself: a
    proposal stating them alone would not do what its authors believe."""
    problems: list[tuple[tuple[str, ...], str, object]] = []
    if dispatch.earnings_credit_max_s:
        return problems
    if dispatch.earnings_credit_fare_scale_max is not None:
        problems.append(
            (
                ("dispatch", "earnings_credit_fare_scale_max"),
                N_("Needs dispatch.earnings_credit_max_s above 0: it scales that credit"),
                plain_str(dispatch.earnings_credit_fare_scale_max),
            )
        )
    if dispatch.earnings_penalty_above_median:
        problems.append(
            (
                ("dispatch", "earnings_penalty_above_median"),
                N_("Needs dispatch.earnings_credit_max_s above 0: it mirrors that credit"),
                True,
            )
        )
    return problems


# Terms added after the first versions were written, with the value they had in the founding
# agreement: a version or proposal stored before a term existed is read with that value (stored
# versions are immutable, and their sha256 stays the digest of the terms as they were written).
# A new proposal must state every term: omitting one is a named error like any other.
LATER_TERMS: tuple[tuple[tuple[str, ...], object], ...] = (
    (("dispatch", "max_plausible_speed_kmh"), 130),
    (("dispatch", "arrival_radius_m"), 250),
    (("dispatch", "no_show_wait_s"), 300),
    (("dispatch", "overrun_percent"), 100),
    (("dispatch", "overrun_s"), 300),
    (("fares", "*", "max_over_quote_percent"), "50"),
    (("reputation", "reveal_after_ratings"), 0),
    (
        ("pay",),
        {"period_days": 7, "timezone": "America/Toronto", "engaged_floor_per_hour": "24.00"},
    ),
    (("patronage",), {"basis": "engaged_seconds", "reserve_percent": "30"}),
    (("governance", "max_voting_days"), 30),
    (("patronage", "max_period_days"), 371),
    (
        ("safety",),
        {
            "pin_default": "never",
            "night_starts": "22:00",
            "night_ends": "06:00",
            "ack_within_s": 60,
            "stop_radius_m": 25,
            "stop_alert_s": 300,
            "away_alert_s": 180,
            "not_started_alert_s": 240,
            "end_distance_m": 500,
            "check_answer_s": 120,
        },
    ),
)


def _fill_later_terms(node: Any, path: tuple[str, ...], value: object) -> None:
    head, *rest = path
    if not isinstance(node, dict):
        return
    if not rest:
        node.setdefault(head, value)
        return
    children = list(node.values()) if head == "*" else [node.get(head)]
    for child in children:
        _fill_later_terms(child, tuple(rest), value)


def stored_terms(stored: dict[str, Any]) -> Terms:
    """Terms as written in a stored version or proposal, with any term added since filled in
    with its founding value (`LATER_TERMS`)."""
    document = copy.deepcopy(stored)
    for path, value in LATER_TERMS:
        _fill_later_terms(document, path, value)
    return Terms.model_validate(document)


def terms_to_wire(terms: Terms) -> dict[str, Any]:
    """The terms as JSON values: decimals as strings, the optional cap as null when unset (terms
    younger than the first stored versions are left out when unset: see `DispatchTerms`)."""
    wire: dict[str, Any] = terms.model_dump(mode="json")
    return wire


def canonical_json(terms: Terms) -> str:
    """Sorted keys, no spaces, decimals as strings: the bytes whose sha256 names a version."""
    return json.dumps(terms_to_wire(terms), sort_keys=True, separators=(",", ":"))


def terms_sha256(terms: Terms) -> str:
    return hashlib.sha256(canonical_json(terms).encode("utf-8")).hexdigest()


def load_terms_file(path: Path) -> Terms:
    """Reads terms from a YAML (or JSON) file; a bad file raises pydantic's ValidationError."""
    return Terms.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def load_founding_terms() -> Terms:
    """The founding agreement that ships with the service (`bargaining/founding_agreement.yaml`)."""
    return load_terms_file(FOUNDING_AGREEMENT_PATH)
