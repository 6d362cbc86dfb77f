"""A quote is a record of what the rider was shown, with its maximum price; a trip is requested
on the rider's consent to one quote of theirs, open, unused and for the same ask."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bargaining.fares import over_quote_cap
from bargaining.terms import load_founding_terms
from coop import jurisdiction
from coop.settings import Settings
from coop.state import CoreState, state_of
from dispatch.trips import consent
from dispatch.trips.models import Trip
from server.app import create_app
from tests.builders import make_rider

NOW = datetime(2027, 3, 1, 17, 0, tzinfo=UTC)
ASK: dict[str, Any] = {
    "pickup": {"lat": 45.5017, "lon": -73.5673},
    "dropoff": {"lat": 45.5231, "lon": -73.5817},
    "wheelchair_accessible": False,
}
QUOTE: dict[str, Any] = {
    "total": "14.20",
    "currency": "CAD",
    "agreement_version": 1,
    "distance_m": 3400,
    "duration_s": 600,
}


async def _quote(session: AsyncSession, rider_id: uuid.UUID, **changes: Any) -> consent.TripQuote:
    terms = load_founding_terms()
    row = await consent.record(
        session=session,
        rider_id=rider_id,
        ask=ASK,
        quote={**QUOTE, **changes},
        terms=terms,
        service_class="standard",
        profile=jurisdiction.load("quebec"),
        now=NOW,
    )
    await session.commit()
    return row


async def test_a_quote_keeps_its_maximum_with_the_laws_lines(
    client: AsyncClient, session: AsyncSession
) -> None:
    rider = await make_rider(client)
    row = await _quote(session, rider.id)
    terms = load_founding_terms()
    cap = over_quote_cap(terms, service_class="standard", quote_total=Decimal("14.20"))
    assert row.max_fare == cap
    # The dues, then each tax on the capped fare plus the dues.
    base = cap + Decimal("0.90")
    gst = (base * Decimal("0.05")).quantize(Decimal("0.01"))
    qst = (base * Decimal("0.09975")).quantize(Decimal("0.01"))
    assert row.max_total == cap + Decimal("0.90") + gst + qst
    assert [line["code"] for line in row.lines] == ["dues", "gst", "qst"]
    assert row.expires_at - row.created_at == timedelta(seconds=300)
    assert (row.jurisdiction, row.jurisdiction_version) == ("quebec", 2)


async def test_consent_binds_the_quote_once(client: AsyncClient, session: AsyncSession) -> None:
    rider = await make_rider(client)
    row = await _quote(session, rider.id)
    chosen = await consent.consent(
        session=session, rider_id=rider.id, quote_id=row.id, ask=ASK, now=NOW
    )
    trip_id = uuid.uuid4()
    consent.bind(chosen, trip_id=trip_id, now=NOW)
    await session.commit()
    with pytest.raises(consent.QuoteUsed):
        await consent.consent(session=session, rider_id=rider.id, quote_id=row.id, ask=ASK, now=NOW)


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"now": NOW + timedelta(seconds=300)}, consent.QuoteExpired),
        ({"now": NOW + timedelta(seconds=299)}, None),
        ({"ask": {**ASK, "wheelchair_accessible": True}}, consent.QuoteMismatch),
        ({"ask": {**ASK, "dropoff": {"lat": 45.5232, "lon": -73.5817}}}, consent.QuoteMismatch),
        ({"quote_id": uuid.uuid4()}, consent.QuoteRequired),
        ({"someone_else": True}, consent.QuoteRequired),
    ],
)
async def test_a_quote_that_is_not_the_riders_open_quote_for_this_ask_is_refused(
    client: AsyncClient,
    session: AsyncSession,
    change: dict[str, Any],
    refusal: type[Exception] | None,
) -> None:
    rider = await make_rider(client)
    row = await _quote(session, rider.id)
    caller = (await make_rider(client)).id if change.get("someone_else") else rider.id
    attempt = consent.consent(
        session=session,
        rider_id=caller,
        quote_id=change.get("quote_id", row.id),
        ask=change.get("ask", ASK),
        now=change.get("now", NOW),
    )
    if refusal is None:
        assert (await attempt).id == row.id
    else:
        with pytest.raises(refusal):
            await attempt


async def test_two_requests_consenting_to_one_quote_at_once_bind_it_once(
    client: AsyncClient, session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    rider = await make_rider(client)
    row = await _quote(session, rider.id)

    async def request() -> uuid.UUID | str:
        async with sessionmaker() as own:
            try:
                chosen = await consent.consent(
                    session=own, rider_id=rider.id, quote_id=row.id, ask=ASK, now=NOW
                )
            except consent.QuoteUsed:
                return "used"
            trip_id = uuid.uuid4()
            await asyncio.sleep(0.05)  # hold the lock while the other waits on it
            consent.bind(chosen, trip_id=trip_id, now=NOW)
            await own.commit()
            return trip_id

    outcomes = await asyncio.gather(request(), request())
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["UUID", "str"]
    await session.refresh(row)
    assert row.trip_id in outcomes


# --- over the API ---------------------------------------------------------------------------

TRIP_ASK: dict[str, Any] = {
    "pickup": {"lat": 45.5017, "lon": -73.5673},
    "dropoff": {"lat": 45.5231, "lon": -73.5817},
}


async def _quote_over_http(client: AsyncClient, rider: Any) -> dict[str, Any]:
    response = await client.post("/v1/quotes", json=TRIP_ASK, headers=rider.headers)
    assert response.status_code == 200, response.text
    quoted: dict[str, Any] = response.json()
    return quoted


async def test_in_quebec_a_trip_needs_the_riders_consent_to_an_open_quote_of_theirs(
    app: FastAPI, client: AsyncClient, session: AsyncSession
) -> None:
    rider, other = await make_rider(client), await make_rider(client, "Sam")
    quoted = await _quote_over_http(client, rider)
    theirs = await _quote_over_http(client, other)

    async def ask(body: dict[str, Any]) -> Any:
        return await client.post("/v1/trips", json=body, headers=rider.headers)

    refused = [
        (await ask(TRIP_ASK), "quote_required"),
        (await ask({**TRIP_ASK, "quote_id": theirs["quote_id"]}), "quote_required"),
        (await ask({**TRIP_ASK, "quote_id": str(uuid.uuid4())}), "quote_required"),
        (
            await ask({**TRIP_ASK, "wheelchair_accessible": True, "quote_id": quoted["quote_id"]}),
            "quote_mismatch",
        ),
    ]
    for response, problem in refused:
        assert response.status_code == 409, response.text
        assert response.json()["type"].endswith(problem)
    assert await session.scalar(select(func.count()).select_from(Trip)) == 0
    # Nothing to match: no driver hears of a trip before the rider consented.
    assert (await app.state.matcher.run_batch()).offers == []

    consented = await ask({**TRIP_ASK, "quote_id": quoted["quote_id"]})
    assert consented.status_code == 201, consented.text
    trip = consented.json()
    for field in ("total", "agreement_version", "distance_m", "duration_s"):
        assert trip["quote"][field] == quoted[field]  # the quote as it was shown
    row = await session.get(consent.TripQuote, uuid.UUID(quoted["quote_id"]))
    assert row is not None and str(row.trip_id) == trip["id"]
    assert f"{row.max_total:.2f}" == quoted["max_total"]
    cancelled = await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)
    assert cancelled.status_code == 200
    again = await ask({**TRIP_ASK, "quote_id": quoted["quote_id"]})
    assert again.status_code == 409 and again.json()["type"].endswith("quote_used")


async def test_a_quote_expires_by_the_apps_clock(app: FastAPI, client: AsyncClient) -> None:
    rider = await make_rider(client)
    quoted = await _quote_over_http(client, rider)
    expires_at = datetime.fromisoformat(quoted["expires_at"])
    state_of(app, CoreState).clock = lambda: expires_at
    late = await client.post(
        "/v1/trips", json={**TRIP_ASK, "quote_id": quoted["quote_id"]}, headers=rider.headers
    )
    assert late.status_code == 409 and late.json()["type"].endswith("quote_expired")


async def test_where_the_law_asks_no_consent_old_clients_request_as_before(
    settings: Settings,
) -> None:
    app = create_app(settings.model_copy(update={"jurisdiction": "none"}))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
            rider = await make_rider(http)
            response = await http.post("/v1/trips", json=TRIP_ASK, headers=rider.headers)
            assert response.status_code == 201, response.text
            quoted = await _quote_over_http(http, rider)
    assert [line["kind"] for line in quoted["lines"]] == ["fare_estimate"]
    assert quoted["max_total"] == quoted["max_fare"]
