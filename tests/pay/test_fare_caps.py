"""A fare cap the Minister declares (T-11.2 s. 94): recorded by an operator with its reference,
audited, refused beyond the law's multiplier or over another cap; quotes, their maximums and
fares honour it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coop.audit import AuditEntry
from coop.state import CoreState, state_of
from tests.builders import DOWNTOWN, PLATEAU, make_driver, make_rider
from tests.pay.helpers import completed_trip

DOWNTOWN_BOX = {
    "type": "Polygon",
    "coordinates": [
        [[-73.60, 45.49], [-73.54, 45.49], [-73.54, 45.512], [-73.60, 45.512], [-73.60, 45.49]]
    ],
}


def cap_body(app: FastAPI, **changes: Any) -> dict[str, Any]:
    now = state_of(app, CoreState).clock()
    body: dict[str, Any] = {
        "territory": DOWNTOWN_BOX,
        "starts_at": (now - timedelta(minutes=5)).isoformat(),
        "ends_at": (now + timedelta(hours=6)).isoformat(),
        "base": "2.00",
        "per_km": "0",
        "per_minute": "0",
        "multiplier": "3",
        "reference": "Décision ministérielle 2027-01 (panne du métro)",
    }
    body.update(changes)
    return body


async def test_a_declared_cap_holds_the_quote_its_maximum_and_the_fare(
    app: FastAPI, client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    recorded = await client.post("/v1/fare-caps", json=cap_body(app), headers=admin_headers)
    assert recorded.status_code == 201, recorded.text
    listed = (await client.get("/v1/fare-caps")).json()
    assert [cap["reference"] for cap in listed] == [recorded.json()["reference"]]
    entry = (
        await session.scalars(select(AuditEntry).where(AuditEntry.kind == "fare_cap_recorded"))
    ).one()
    assert entry.content["multiplier"] == "3"

    rider = await make_rider(client)
    quoted = await client.post(
        "/v1/quotes", json={"pickup": DOWNTOWN, "dropoff": PLATEAU}, headers=rider.headers
    )
    quote = quoted.json()
    # The rate (2.00, nothing per km or minute) times 3: 6.00, below the agreement's estimate.
    assert (quote["total"], quote["max_fare"]) == ("6.00", "6.00")

    driver = await make_driver(client, admin_headers)
    trip = await completed_trip(app, client, session, rider, driver)
    # The agreement's minimum (7.00) is held at the cap, and the trip says why.
    assert trip["fare"]["total"] == "6.00"
    receipt = (await client.get(f"/v1/trips/{trip['id']}/receipt", headers=rider.headers)).json()
    assert receipt["fare_capped"] is True and "Minister" in receipt["fare_cap_reason"]
    assert Decimal(receipt["amount_billed"]) <= Decimal(receipt["max_total"])
    assert Decimal(receipt["commission"]) + Decimal(receipt["driver_earnings"]) == Decimal("6.00")


@pytest.mark.parametrize(
    ("changes", "status", "problem"),
    [
        ({"multiplier": "3.5"}, 422, "fare_cap_multiplier_too_high"),
        ({"multiplier": 2.5}, 422, "validation_error"),
        ({"base": "-1"}, 422, "validation_error"),
        ({"ends_at": "2020-01-01T00:00:00+00:00"}, 422, "validation_error"),
        ({"starts_at": "2027-01-01T00:00:00"}, 422, "validation_error"),
        ({"territory": {"type": "Point", "coordinates": [-73.5, 45.5]}}, 422, "validation_error"),
        ({"territory": {"type": "Polygon"}}, 422, "validation_error"),
        ({"reference": ""}, 422, "validation_error"),
    ],
)
async def test_a_bad_cap_is_refused_and_nothing_recorded(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    changes: dict[str, Any],
    status: int,
    problem: str,
) -> None:
    refused = await client.post(
        "/v1/fare-caps", json=cap_body(app, **changes), headers=admin_headers
    )
    assert refused.status_code == status, refused.text
    assert refused.json()["type"].endswith(problem)
    assert (await client.get("/v1/fare-caps")).json() == []


async def test_caps_never_overlap_and_only_operators_record_them(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    first = await client.post("/v1/fare-caps", json=cap_body(app), headers=admin_headers)
    assert first.status_code == 201
    overlapping = await client.post(
        "/v1/fare-caps", json=cap_body(app, multiplier="2"), headers=admin_headers
    )
    assert overlapping.status_code == 409
    assert overlapping.json()["type"].endswith("fare_cap_overlaps")
    rider = await make_rider(client)
    for headers in ({}, rider.headers):
        denied = await client.post("/v1/fare-caps", json=cap_body(app), headers=headers)
        assert denied.status_code in (401, 403)


async def test_the_agreement_page_shows_the_caps_in_force_in_both_languages(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    page = await client.get("/agreement", headers={"Accept-Language": "en-CA"})
    assert "Fares capped by the Minister" not in page.text
    await client.post("/v1/fare-caps", json=cap_body(app), headers=admin_headers)
    english = await client.get("/agreement", headers={"Accept-Language": "en-CA"})
    assert "Fares capped by the Minister" in english.text and "panne du métro" in english.text
    french = await client.get("/agreement", headers={"Accept-Language": "fr-CA"})
    assert "Prix plafonnés par le ministre" in french.text
