"""The fare engine: prices trips, quotes and cancellation fees exactly as docs/agreement.md says.

Pure: no I/O, no clock. All arithmetic is in `Decimal` with products taken before quotients, so
the only inexact step (dividing by 60 for minutes) is carried to 50 significant digits, far below
anything that could move a cent; every amount is then rounded half-up to the cent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Protocol

from bargaining.terms import Terms, money_str
from coop.geo import haversine_m
from coop.money import round_cents

# A quote knows only the straight line between pickup and dropoff. Streets are longer than the
# line: on a city grid a trip is about 1.3 times the great-circle distance (Manhattan distance is
# at most sqrt(2) times, and routes are rarely worst case). How long the route takes comes from
# the service's travel-time model, learned from the co-op's trips (a `RouteDuration` the caller
# passes in: bargaining does not know where it comes from); without one, and as that model's
# prior before any trip, the average city speed, stops included: 25 km/h. A quote is an
# estimate; the metered fare is what is charged.
QUOTE_DETOUR_FACTOR = Decimal("1.3")
QUOTE_SPEED_KMH = Decimal("25")
QUOTE_SPEED_MPS = QUOTE_SPEED_KMH * 1000 / 3600


class RouteDuration(Protocol):
    """Whole seconds expected to drive a route of `distance_m` road metres between two points
    (filled in by the composition root with the learned travel-time model)."""

    def __call__(
        self,
        *,
        pickup_lat: float,
        pickup_lon: float,
        dropoff_lat: float,
        dropoff_lon: float,
        distance_m: int,
    ) -> int: ...


_PRECISION = 50

STANDARD = "standard"
ACCESSIBLE = "accessible"


@dataclass(frozen=True)
class Fare:
    """A metered trip's fare: what the rider pays and how it splits."""

    total: Decimal
    driver_earnings: Decimal
    coop_commission: Decimal
    currency: str
    agreement_version: int
    distance_m: int
    duration_s: int
    # Set when the fare was capped at its quote plus the agreement's max_over_quote_percent:
    # what the meter said, and the cap that was charged instead.
    metered_total: Decimal | None = None

    @property
    def capped(self) -> bool:
        return self.metered_total is not None

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {
            "total": money_str(self.total),
            "driver_earnings": money_str(self.driver_earnings),
            "coop_commission": money_str(self.coop_commission),
            "currency": self.currency,
            "agreement_version": self.agreement_version,
            "distance_m": self.distance_m,
            "duration_s": self.duration_s,
        }
        if self.metered_total is not None:
            wire["metered_total"] = money_str(self.metered_total)
        return wire


@dataclass(frozen=True)
class Quote:
    """An estimate before the trip, from the straight-line distance."""

    total: Decimal
    currency: str
    agreement_version: int
    distance_m: int
    duration_s: int

    def to_wire(self) -> dict[str, object]:
        return {
            "total": money_str(self.total),
            "currency": self.currency,
            "agreement_version": self.agreement_version,
            "distance_m": self.distance_m,
            "duration_s": self.duration_s,
        }


def service_class_for(terms: Terms, *, wheelchair_accessible: bool) -> str:
    """The fare class of a request: `accessible` when asked for and the terms have it."""
    if wheelchair_accessible and ACCESSIBLE in terms.fares:
        return ACCESSIBLE
    return STANDARD


def price_trip(
    terms: Terms,
    *,
    agreement_version: int,
    service_class: str,
    distance_m: int,
    duration_s: int,
) -> Fare:
    """The fare of a metered trip under `terms` (docs/agreement.md, "Pricing a metered trip")."""
    if service_class not in terms.fares:
        known = ", ".join(sorted(terms.fares))
        raise ValueError(f"no fare class {service_class!r} in the agreement (it has: {known})")
    if distance_m < 0 or duration_s < 0:
        raise ValueError("distance_m and duration_s cannot be negative")
    fare = terms.fares[service_class]
    with localcontext() as context:
        context.prec = _PRECISION
        distance = Decimal(distance_m)
        duration = Decimal(duration_s)
        metered = fare.base + fare.per_km * distance / 1000 + fare.per_minute * duration / 60
        total = round_cents(max(fare.minimum, metered))
    return _split(
        terms,
        total=total,
        agreement_version=agreement_version,
        distance_m=distance_m,
        duration_s=duration_s,
    )


def _split(
    terms: Terms,
    *,
    total: Decimal,
    agreement_version: int,
    distance_m: int,
    duration_s: int,
    metered_total: Decimal | None = None,
) -> Fare:
    """How `total` splits between the co-op and the driver, the driver's floor first."""
    floor_terms = terms.driver_floor
    with localcontext() as context:
        context.prec = _PRECISION
        distance = Decimal(distance_m)
        duration = Decimal(duration_s)
        floor = round_cents(
            floor_terms.per_km * distance / 1000 + floor_terms.per_minute * duration / 60
        )
        commission = round_cents(terms.commission.percent * total / 100)
        if terms.commission.cap is not None:
            commission = min(commission, terms.commission.cap)
        commission = max(Decimal("0.00"), min(commission, total - floor))
    return Fare(
        total=total,
        driver_earnings=total - commission,
        coop_commission=commission,
        currency=terms.currency,
        agreement_version=agreement_version,
        distance_m=distance_m,
        duration_s=duration_s,
        metered_total=metered_total,
    )


def over_quote_cap(terms: Terms, *, service_class: str, quote_total: Decimal) -> Decimal:
    """The most a trip quoted `quote_total` may cost: the quote plus the class's
    `max_over_quote_percent`, rounded to the cent."""
    percent = terms.fares[service_class].max_over_quote_percent
    with localcontext() as context:
        context.prec = _PRECISION
        return round_cents(quote_total * (100 + percent) / 100)


def cap_to_quote(terms: Terms, fare: Fare, *, service_class: str, quote_total: Decimal) -> Fare:
    """The fare, or, when it is above its quote by more than the agreement allows, the cap
    (`metered_total` then keeps what the meter said). The commission gives way first, as
    always, so that the driver keeps their floor as far as the capped fare allows."""
    cap = over_quote_cap(terms, service_class=service_class, quote_total=quote_total)
    if fare.total <= cap:
        return fare
    return _split(
        terms,
        total=cap,
        agreement_version=fare.agreement_version,
        distance_m=fare.distance_m,
        duration_s=fare.duration_s,
        metered_total=fare.total,
    )


def cap_at(terms: Terms, fare: Fare, *, total: Decimal) -> Fare:
    """The fare held at `total` (a ceiling from outside the agreement: the law's declared cap,
    or the maximum the rider consented to), split as any capped fare, `metered_total` keeping
    what the meter said; the fare as it is when it is not above."""
    if fare.total <= total:
        return fare
    return _split(
        terms,
        total=total,
        agreement_version=fare.agreement_version,
        distance_m=fare.distance_m,
        duration_s=fare.duration_s,
        metered_total=fare.metered_total if fare.metered_total is not None else fare.total,
    )


def estimate_route(
    *,
    pickup_lat: float,
    pickup_lon: float,
    dropoff_lat: float,
    dropoff_lon: float,
    duration: RouteDuration | None = None,
) -> tuple[int, int]:
    """(distance_m, duration_s) expected between two points: the documented factor over the
    straight line, and `duration`'s estimate for it (without one, the documented speed)."""
    line_m = Decimal(repr(haversine_m(pickup_lat, pickup_lon, dropoff_lat, dropoff_lon)))
    distance_m = int((line_m * QUOTE_DETOUR_FACTOR).to_integral_value(rounding=ROUND_HALF_UP))
    if duration is None:
        return distance_m, math.ceil(Decimal(distance_m) / QUOTE_SPEED_MPS)
    duration_s = duration(
        pickup_lat=pickup_lat,
        pickup_lon=pickup_lon,
        dropoff_lat=dropoff_lat,
        dropoff_lon=dropoff_lon,
        distance_m=distance_m,
    )
    if duration_s < 0:
        raise ValueError(f"a route's duration cannot be negative (got {duration_s})")
    return distance_m, duration_s


def quote(
    terms: Terms,
    *,
    agreement_version: int,
    service_class: str,
    pickup_lat: float,
    pickup_lon: float,
    dropoff_lat: float,
    dropoff_lon: float,
    duration: RouteDuration | None = None,
) -> Quote:
    """The fare expected for a trip: the metered formula over the estimated route (its duration
    from `duration`, the travel-time model, when given)."""
    distance_m, duration_s = estimate_route(
        pickup_lat=pickup_lat,
        pickup_lon=pickup_lon,
        dropoff_lat=dropoff_lat,
        dropoff_lon=dropoff_lon,
        duration=duration,
    )
    fare = price_trip(
        terms,
        agreement_version=agreement_version,
        service_class=service_class,
        distance_m=distance_m,
        duration_s=duration_s,
    )
    return Quote(
        total=fare.total,
        currency=fare.currency,
        agreement_version=agreement_version,
        distance_m=distance_m,
        duration_s=duration_s,
    )


def cancellation_fee(
    terms: Terms, *, assigned_at: datetime | None, cancelled_at: datetime
) -> Decimal:
    """What a rider's cancellation costs: nothing before assignment or within the free period."""
    if assigned_at is None:
        return Decimal("0.00")
    elapsed_s = (cancelled_at - assigned_at).total_seconds()
    if elapsed_s <= terms.cancellation.free_period_s:
        return Decimal("0.00")
    return round_cents(terms.cancellation.fee)


@dataclass(frozen=True)
class Itemised:
    """A metered fare item by item, for a receipt. Items are exact (a rate times a distance can
    have more than two places); only `total`, `floor`, `commission` and `driver_earnings` are
    rounded, each once, exactly as `price_trip` rounds them."""

    base: Decimal
    distance_km: Decimal
    per_km: Decimal
    distance_amount: Decimal
    minutes: Decimal
    per_minute: Decimal
    time_amount: Decimal
    metered: Decimal
    minimum: Decimal
    minimum_applied: bool
    metered_total: Decimal  # the meter's fare: the minimum or the metered amount, to the cent
    total: Decimal  # what was charged: `metered_total`, or the cap to the quote when it applied
    commission_percent: Decimal
    commission_by_percent: Decimal
    commission_cap: Decimal | None
    cap_applied: bool
    driver_floor: Decimal
    floor_applied: bool  # the commission was cut so the driver gets at least the floor
    commission: Decimal
    driver_earnings: Decimal


def itemise(
    terms: Terms,
    *,
    service_class: str,
    distance_m: int,
    duration_s: int,
    capped_total: Decimal | None = None,
) -> Itemised:
    """The items of `price_trip` for the same trip; their total and split are the same. A fare
    capped at its quote (`cap_to_quote`) passes the cap it was charged, `capped_total`: the
    items stay the meter's, the total and its split are those of the cap."""
    if service_class not in terms.fares:
        raise ValueError(f"no fare class {service_class!r} in the agreement")
    fare = terms.fares[service_class]
    floor_terms = terms.driver_floor
    with localcontext() as context:
        context.prec = _PRECISION
        km = Decimal(distance_m) / 1000
        minutes = Decimal(duration_s) / 60
        distance_amount = fare.per_km * Decimal(distance_m) / 1000
        time_amount = fare.per_minute * Decimal(duration_s) / 60
        metered = fare.base + distance_amount + time_amount
        metered_total = round_cents(max(fare.minimum, metered))
        total = metered_total if capped_total is None else capped_total
        floor = round_cents(
            floor_terms.per_km * Decimal(distance_m) / 1000
            + floor_terms.per_minute * Decimal(duration_s) / 60
        )
        by_percent = round_cents(terms.commission.percent * total / 100)
        cap = terms.commission.cap
        capped = by_percent if cap is None else min(by_percent, cap)
        commission = max(Decimal("0.00"), min(capped, total - floor))
    return Itemised(
        base=fare.base,
        distance_km=km.normalize(),
        per_km=fare.per_km,
        distance_amount=distance_amount.normalize(),
        minutes=minutes.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP).normalize(),
        per_minute=fare.per_minute,
        time_amount=time_amount,
        metered=metered,
        minimum=fare.minimum,
        minimum_applied=fare.minimum > metered,
        metered_total=metered_total,
        total=total,
        commission_percent=terms.commission.percent,
        commission_by_percent=by_percent,
        commission_cap=cap,
        cap_applied=cap is not None and by_percent > cap,
        driver_floor=floor,
        floor_applied=capped > total - floor,
        commission=commission,
        driver_earnings=total - commission,
    )
