"""The impact estimate of a proposal: recent completed trips re-priced under both sets of terms.

The trips come from dispatch, which owns them; bargaining cannot import dispatch (the
dependencies point the other way), so dispatch hands a `CompletedTripsSource` to the app
(`app.state.completed_trips_source`) and this module only prices what it is given.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.fares import STANDARD
from bargaining.fares import price_trip as price
from bargaining.terms import Terms, money_str
from coop.money import round_cents

IMPACT_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class MeteredTrip:
    """What pricing needs of a completed trip: its fare class and what was metered."""

    service_class: str
    distance_m: int
    duration_s: int


# Called with (session, since): the trips completed at or after `since`.
CompletedTripsSource = Callable[[AsyncSession, datetime], Awaitable[list[MeteredTrip]]]


@dataclass(frozen=True)
class Totals:
    driver_earnings: Decimal
    coop_commission: Decimal
    median_fare: Decimal | None  # None when there are no trips

    def to_wire(self) -> dict[str, object]:
        return {
            "driver_earnings": money_str(self.driver_earnings),
            "coop_commission": money_str(self.coop_commission),
            "median_fare": None if self.median_fare is None else money_str(self.median_fare),
        }


@dataclass(frozen=True)
class Impact:
    trips: int
    window_days: int
    currency_before: str
    currency_after: str
    before: Totals
    after: Totals

    def to_wire(self) -> dict[str, object]:
        return {
            "trips": self.trips,
            "window_days": self.window_days,
            "currency_before": self.currency_before,
            "currency_after": self.currency_after,
            "before": self.before.to_wire(),
            "after": self.after.to_wire(),
        }


def _totals(terms: Terms, trips: Sequence[MeteredTrip]) -> Totals:
    earnings = commission = Decimal("0.00")
    fares = []
    for trip in trips:
        # A class the terms no longer have is priced as standard, as a new request would be.
        service_class = trip.service_class if trip.service_class in terms.fares else STANDARD
        fare = price(
            terms,
            agreement_version=0,
            service_class=service_class,
            distance_m=trip.distance_m,
            duration_s=trip.duration_s,
        )
        earnings += fare.driver_earnings
        commission += fare.coop_commission
        fares.append(fare.total)
    median = round_cents(statistics.median(fares)) if fares else None
    return Totals(earnings, commission, median)


def estimate(*, current: Terms, proposed: Terms, trips: Sequence[MeteredTrip]) -> Impact:
    """Totals before (current terms) and after (proposed terms) over the same trips."""
    return Impact(
        trips=len(trips),
        window_days=IMPACT_WINDOW.days,
        currency_before=current.currency,
        currency_after=proposed.currency,
        before=_totals(current, trips),
        after=_totals(proposed, trips),
    )
