"""The fare engine: docs/agreement.md's formula to the cent, and the properties it promises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bargaining.fares import (
    Fare,
    cancellation_fee,
    estimate_route,
    price_trip,
    quote,
    service_class_for,
)
from bargaining.terms import Terms, load_founding_terms
from tests.bargaining.strategies import terms_with, valid_terms

FOUNDING = load_founding_terms()
D = Decimal


def fare_of(
    terms: Terms, distance_m: int, duration_s: int, service_class: str = "standard"
) -> Fare:
    return price_trip(
        terms,
        agreement_version=7,
        service_class=service_class,
        distance_m=distance_m,
        duration_s=duration_s,
    )


# Worked examples, computed by hand from docs/agreement.md with the founding terms
# (base 3.50, 1.05/km, 0.35/min, minimum 7.00; 8 % capped at 2.50; floor 0.85/km, 0.30/min).
@pytest.mark.parametrize(
    ("distance_m", "duration_s", "total", "earnings", "commission"),
    [
        # 3.50 + 1.05*3.3 + 0.35*10 = 10.465 -> 10.47 (half-up; half-even would say 10.46);
        # 8 % = 0.8376 -> 0.84; floor 2.805 + 3.00 = 5.81 leaves room; driver 10.47 - 0.84.
        (3300, 600, "10.47", "9.63", "0.84"),
        # 3.50 + 0.525 + 0.70 = 4.725, under the minimum: 7.00; 8 % = 0.56.
        (500, 120, "7.00", "6.44", "0.56"),
        # A zero-length trip (cancelled at the door, say) still costs the minimum.
        (0, 0, "7.00", "6.44", "0.56"),
        # 3.50 + 31.50 + 14.00 = 49.00; 8 % = 3.92 is over the cap: 2.50.
        (30_000, 2400, "49.00", "46.50", "2.50"),
        # 3.50 + 1.05*4.321 + 0.35*(437/60) = 3.50 + 4.53705 + 2.549166... = 10.586216 -> 10.59;
        # 8 % = 0.8472 -> 0.85.
        (4321, 437, "10.59", "9.74", "0.85"),
    ],
)
def test_worked_examples_to_the_cent(
    distance_m: int, duration_s: int, total: str, earnings: str, commission: str
) -> None:
    fare = fare_of(FOUNDING, distance_m, duration_s)
    assert (fare.total, fare.driver_earnings, fare.coop_commission) == (
        D(total),
        D(earnings),
        D(commission),
    )
    assert fare.to_wire() == {
        "total": total,
        "driver_earnings": earnings,
        "coop_commission": commission,
        "currency": "CAD",
        "agreement_version": 7,
        "distance_m": distance_m,
        "duration_s": duration_s,
    }


def test_the_floor_limits_the_commission() -> None:
    terms = terms_with(**{"commission.percent": "50", "commission.cap": None})
    # total 3.50 + 10.50 + 3.50 = 17.50; 50 % would be 8.75, but the floor is
    # 8.50 + 3.00 = 11.50, so the co-op takes only 17.50 - 11.50 = 6.00.
    fare = fare_of(terms, 10_000, 600)
    assert (fare.total, fare.driver_earnings, fare.coop_commission) == (
        D("17.50"),
        D("11.50"),
        D("6.00"),
    )


def test_rounding_is_half_up_at_every_step() -> None:
    terms = terms_with(
        **{
            "fares.standard": {
                "base": "0.00",
                "per_km": "0.85",
                "per_minute": "0.35",
                "minimum": "0.00",
                "max_over_quote_percent": "50",
            },
            "commission.percent": "12.5",
            "commission.cap": None,
        }
    )
    # 0.35 * 1.5 min = 0.525 -> 0.53; 12.5 % of 0.53 = 0.06625 -> 0.07;
    # floor 0.30 * 1.5 = 0.45 leaves 0.08, so the commission is 0.07.
    fare = fare_of(terms, 0, 90)
    assert (fare.total, fare.coop_commission, fare.driver_earnings) == (
        D("0.53"),
        D("0.07"),
        D("0.46"),
    )


def test_zero_commission() -> None:
    terms = terms_with(**{"commission.percent": "0"})
    fare = fare_of(terms, 3300, 600)
    assert fare.coop_commission == D("0.00")
    assert fare.driver_earnings == fare.total == D("10.47")


def test_each_class_has_its_own_fares() -> None:
    terms = terms_with(
        **{
            "fares.accessible": {
                "base": "5.00",
                "per_km": "1.05",
                "per_minute": "0.35",
                "minimum": "7.00",
                "max_over_quote_percent": "50",
            }
        }
    )
    assert fare_of(terms, 3300, 600, "accessible").total == D("11.97")
    assert fare_of(terms, 3300, 600, "standard").total == D("10.47")


def test_an_unknown_class_or_a_negative_measure_is_refused() -> None:
    with pytest.raises(ValueError, match="no fare class 'limousine'"):
        fare_of(FOUNDING, 1000, 60, "limousine")
    with pytest.raises(ValueError, match="negative"):
        fare_of(FOUNDING, -1, 60)


def test_service_class_for_a_request() -> None:
    assert service_class_for(FOUNDING, wheelchair_accessible=True) == "accessible"
    assert service_class_for(FOUNDING, wheelchair_accessible=False) == "standard"
    wire_without = terms_with(
        **{
            "fares": {
                "standard": {
                    "base": "3.50",
                    "per_km": "1.05",
                    "per_minute": "0.35",
                    "minimum": "7.00",
                    "max_over_quote_percent": "50",
                }
            }
        }
    )
    assert service_class_for(wire_without, wheelchair_accessible=True) == "standard"


def test_a_quote_prices_the_estimated_route() -> None:
    # Downtown to the Plateau: 2515.4 m in a straight line; * 1.3 = 3270 m; at 25 km/h that
    # is 470.9 s -> 471 s. 3.50 + 1.05*3.27 + 0.35*471/60 = 3.50 + 3.4335 + 2.7475 = 9.681.
    q = quote(
        FOUNDING,
        agreement_version=3,
        service_class="standard",
        pickup_lat=45.5017,
        pickup_lon=-73.5673,
        dropoff_lat=45.5225,
        dropoff_lon=-73.5800,
    )
    assert q.to_wire() == {
        "total": "9.68",
        "currency": "CAD",
        "agreement_version": 3,
        "distance_m": 3270,
        "duration_s": 471,
    }


def test_a_quote_for_the_same_place_is_the_minimum() -> None:
    assert estimate_route(
        pickup_lat=45.5, pickup_lon=-73.6, dropoff_lat=45.5, dropoff_lon=-73.6
    ) == (
        0,
        0,
    )
    q = quote(
        FOUNDING,
        agreement_version=1,
        service_class="standard",
        pickup_lat=45.5,
        pickup_lon=-73.6,
        dropoff_lat=45.5,
        dropoff_lon=-73.6,
    )
    assert q.total == D("7.00")


def test_cancellation_fees() -> None:
    assigned = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    fee = FOUNDING.cancellation.fee
    assert cancellation_fee(FOUNDING, assigned_at=None, cancelled_at=assigned) == D("0.00")
    for seconds, expected in [(0, D("0.00")), (120, D("0.00")), (121, fee), (3600, fee)]:
        cancelled = assigned + timedelta(seconds=seconds)
        assert cancellation_fee(FOUNDING, assigned_at=assigned, cancelled_at=cancelled) == expected
    assert fee == D("5.00")


distances = st.integers(min_value=0, max_value=300_000)
durations = st.integers(min_value=0, max_value=6 * 3600)


def _floor(terms: Terms, distance_m: int, duration_s: int) -> Decimal:
    exact = (
        terms.driver_floor.per_km * distance_m / 1000
        + terms.driver_floor.per_minute * Decimal(duration_s) / 60
    )
    return exact.quantize(D("0.01"), rounding=ROUND_HALF_UP)


@given(terms=valid_terms(), distance_m=distances, duration_s=durations)
def test_the_split_adds_up_and_respects_the_floor_and_the_cap(
    terms: Terms, distance_m: int, duration_s: int
) -> None:
    fare = fare_of(terms, distance_m, duration_s)
    assert fare.total == fare.driver_earnings + fare.coop_commission
    assert fare.driver_earnings >= _floor(terms, distance_m, duration_s)
    assert fare.coop_commission >= 0
    if terms.commission.cap is not None:
        assert fare.coop_commission <= terms.commission.cap
    assert fare.coop_commission <= (terms.commission.percent * fare.total / 100).quantize(
        D("0.01"), rounding=ROUND_HALF_UP
    )
    assert fare.total >= terms.fares["standard"].minimum
    for amount in (fare.total, fare.driver_earnings, fare.coop_commission):
        assert amount == amount.quantize(D("0.01"))


@given(
    terms=valid_terms(),
    distance_m=distances,
    duration_s=durations,
    more_m=st.integers(min_value=0, max_value=50_000),
    more_s=st.integers(min_value=0, max_value=3600),
)
def test_longer_trips_never_cost_less_nor_pay_less(
    terms: Terms, distance_m: int, duration_s: int, more_m: int, more_s: int
) -> None:
    fare = fare_of(terms, distance_m, duration_s)
    farther = fare_of(terms, distance_m + more_m, duration_s)
    longer = fare_of(terms, distance_m, duration_s + more_s)
    for other in (farther, longer):
        assert other.total >= fare.total
        assert other.driver_earnings >= fare.driver_earnings
