"""The impact estimate: the last 30 days of completed trips re-priced under both sets of terms."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.impact import MeteredTrip, estimate
from bargaining.models import Proposal
from bargaining.terms import load_founding_terms
from tests.bargaining.conftest import Clock, open_proposal, proposal_body
from tests.bargaining.strategies import terms_with
from tests.builders import Account

# Priced by hand in tests/bargaining/test_fares.py under the founding terms:
# 10.47 = 9.63 + 0.84;  7.00 = 6.44 + 0.56;  49.00 = 46.50 + 2.50 (capped).
TRIPS = [
    MeteredTrip(service_class="standard", distance_m=3300, duration_s=600),
    MeteredTrip(service_class="standard", distance_m=500, duration_s=120),
    MeteredTrip(service_class="accessible", distance_m=30_000, duration_s=2400),
]


async def test_a_proposal_carries_the_re_priced_totals(
    app: FastAPI, client: AsyncClient, committee: Account, clock: Clock, session: AsyncSession
) -> None:
    asked: list[datetime] = []

    async def completed_trips(session: AsyncSession, since: datetime) -> list[MeteredTrip]:
        asked.append(since)
        return TRIPS

    app.state.completed_trips_source = completed_trips
    body = proposal_body(
        clock,
        changes={
            "fares.standard.per_km": "1.10",
            "commission.percent": "10",
            "commission.cap": "3.00",
        },
    )
    proposal = await open_proposal(client, committee, body)
    assert asked == [clock.now - timedelta(days=30)]
    # After: 3.50 + 3.63 + 3.50 = 10.63, 10 % = 1.06, driver 9.57;
    # 4.75 -> minimum 7.00, 0.70, 6.30; accessible still 1.05/km: 49.00, 4.90 capped at 3.00.
    assert proposal["impact"] == {
        "trips": 3,
        "window_days": 30,
        "currency_before": "CAD",
        "currency_after": "CAD",
        "before": {"driver_earnings": "62.57", "coop_commission": "3.90", "median_fare": "10.47"},
        "after": {"driver_earnings": "61.87", "coop_commission": "4.76", "median_fare": "10.63"},
    }
    # The estimate is kept with the proposal: members later see what they voted on.
    stored = await session.get(Proposal, uuid.UUID(proposal["id"]))
    assert stored is not None and stored.impact == proposal["impact"]


def test_the_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    trips = TRIPS[:2]
    impact = estimate(current=load_founding_terms(), proposed=load_founding_terms(), trips=trips)
    # (10.47 + 7.00) / 2 = 8.735 -> 8.74
    assert impact.before.median_fare == Decimal("8.74")
    assert impact.before == impact.after


def test_a_class_the_proposal_drops_is_priced_as_standard() -> None:
    standard_only = terms_with(
        fares={
            "standard": {
                "base": "4.00",
                "per_km": "1.05",
                "per_minute": "0.35",
                "minimum": "7.00",
                "max_over_quote_percent": "50",
            }
        }
    )
    impact = estimate(current=load_founding_terms(), proposed=standard_only, trips=TRIPS[2:])
    # 4.00 + 31.50 + 14.00 = 49.50, capped commission 2.50.
    assert impact.after.median_fare == Decimal("49.50")
    assert impact.after.coop_commission == Decimal("2.50")
    assert impact.after.driver_earnings == Decimal("47.00")


def test_no_trips_is_a_valid_answer() -> None:
    impact = estimate(current=load_founding_terms(), proposed=load_founding_terms(), trips=[])
    assert impact.trips == 0
    assert impact.before.median_fare is None
    assert impact.to_wire()["after"] == {
        "driver_earnings": "0.00",
        "coop_commission": "0.00",
        "median_fare": None,
    }
