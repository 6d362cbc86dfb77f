"""What each audience sees of a trip is its own allow-list (dispatch/trips/views.py): the rider's
and the driver's views over the real protocol, the operators' from the stored row, and a field
the trip row gains reaches none of them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coop.auth import Principal, Role
from dispatch.trips import views
from dispatch.trips.models import Trip
from tests.builders import Account, assigned_trip, make_driver, make_rider

# docs/protocol.md, "Trip object" and part 2's extensions: the same keys for the rider and the
# driver (the driver's `rider_id` is null, the rider's `rider` is null).
TRIP_KEYS = {
    "id",
    "status",
    "rider_id",
    "driver_id",
    "pickup",
    "dropoff",
    "wheelchair_accessible",
    "requested_at",
    "assigned_at",
    "arrived_at",
    "started_at",
    "ended_at",
    "quote",
    "fare",
    "cancel_reason",
    "cancelled_by",
    "cancellation_fee",
    "matching_deadline_at",
    "driver",
    "rider",
    "cancellation_fee_reason",
    "implausible_positions",
    "fare_capped",
    "fare_cap_reason",
    "timed_out",
    "pin",
    "pin_required",
}
# docs/architecture.md, "What each audience sees of a trip".
OPERATOR_KEYS = {
    "id",
    "status",
    "region",
    "service_class",
    "agreement_version",
    "rider_id",
    "driver_id",
    "pickup",
    "dropoff",
    "requested_at",
    "assigned_at",
    "arrived_at",
    "started_at",
    "ended_at",
    "currency",
    "quote_total",
    "fare_total",
    "driver_earnings",
    "coop_commission",
    "cancelled_by",
    "cancellation_fee",
    "timed_out",
    "implausible_positions",
    "fare_capped",
    "fare_review_reason",
    "fare_reviewed_at",
}
# What a column the trip gains holds: it must not reach anyone until a view names it.
SECRET = "4 rue Secrète, door code 1234"


@pytest.fixture
async def rider(client: AsyncClient) -> Account:
    rider = await make_rider(client, "Rosa Rider")
    response = await client.patch(
        "/v1/riders/me", json={"first_name": "Rosa"}, headers=rider.headers
    )
    assert response.status_code == 200, response.text
    return rider


@pytest.fixture
async def driver(client: AsyncClient, admin_headers: dict[str, str]) -> Account:
    return await make_driver(client, admin_headers, name="Dana Driver")


async def _row(session: AsyncSession, trip_id: str) -> Trip:
    trip = await session.scalar(
        select(Trip).where(Trip.id == uuid.UUID(trip_id)).execution_options(populate_existing=True)
    )
    assert trip is not None
    return trip


async def test_the_riders_view_has_exactly_the_documented_keys(
    app: FastAPI, client: AsyncClient, rider: Account, driver: Account
) -> None:
    trip = await assigned_trip(app, client, rider, driver)
    seen = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert set(seen) == TRIP_KEYS
    assert seen["rider_id"] == str(rider.id)
    assert seen["rider"] is None
    assert seen["driver"]["id"] == str(driver.id)


async def test_the_drivers_view_has_exactly_the_documented_keys(
    app: FastAPI, client: AsyncClient, rider: Account, driver: Account
) -> None:
    trip = await assigned_trip(app, client, rider, driver)
    answer = await client.get(f"/v1/trips/{trip['id']}", headers=driver.headers)
    seen = answer.json()
    assert set(seen) == TRIP_KEYS
    assert seen["rider_id"] is None
    assert seen["rider"] == {"first_name": "Rosa"}
    assert str(rider.id) not in answer.text


async def test_the_operators_view_has_exactly_its_listed_keys(
    app: FastAPI, client: AsyncClient, session: AsyncSession, rider: Account, driver: Account
) -> None:
    trip = await assigned_trip(app, client, rider, driver)
    seen = views.OperatorTripView.of(await _row(session, trip["id"])).model_dump(mode="json")
    assert set(seen) == OPERATOR_KEYS
    assert (seen["rider_id"], seen["driver_id"]) == (str(rider.id), str(driver.id))
    assert seen["quote_total"] == trip["quote"]["total"]


async def test_a_column_added_to_the_trip_reaches_no_audience(
    app: FastAPI, client: AsyncClient, session: AsyncSession, rider: Account, driver: Account
) -> None:
    trip = await assigned_trip(app, client, rider, driver)
    row = await _row(session, trip["id"])
    # As a new column would be: on the row, named by no view yet.
    row.home_address = SECRET  # type: ignore[attr-defined]
    both = await views.views(session=session, trip=row)
    seen: dict[str, dict[str, Any]] = {
        "rider": both.rider.model_dump(mode="json"),
        "driver": both.driver.model_dump(mode="json"),
        "operators": views.OperatorTripView.of(row).model_dump(mode="json"),
    }
    for audience, view in seen.items():
        assert "home_address" not in view, audience
        assert SECRET not in json.dumps(view), audience
    as_rider = Principal(role=Role.rider, subject_id=rider.id)
    assert (await views.view_for(session=session, trip=row, principal=as_rider)) == both.rider


async def test_a_field_shown_to_the_rider_does_not_reach_the_driver(
    app: FastAPI,
    client: AsyncClient,
    session: AsyncSession,
    rider: Account,
    driver: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The driver's view is built from its own list, never from the rider's with fields blanked:
    a field the rider's model gains stays the rider's."""

    rider_view = views.RiderTripView

    class RiderViewWithAddress(views.RiderTripView):
        home_address: str | None = None

        @classmethod
        def of(cls, trip: Trip, **parts: Any) -> views.RiderTripView:
            base = rider_view.of(trip, **parts)
            return cls(**dict(base), home_address=SECRET)

    monkeypatch.setattr(views, "RiderTripView", RiderViewWithAddress)
    trip = await assigned_trip(app, client, rider, driver)
    both = await views.views(session=session, trip=await _row(session, trip["id"]))
    assert both.rider.model_dump()["home_address"] == SECRET
    assert "home_address" not in both.driver.model_dump()
    assert SECRET not in both.driver.model_dump_json()
    read = await client.get(f"/v1/trips/{trip['id']}", headers=driver.headers)
    assert SECRET not in read.text
