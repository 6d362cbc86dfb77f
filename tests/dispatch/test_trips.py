"""Trips over HTTP: quotes, requests with Idempotency-Key, the state machine, cancellation,
unfulfilled requests, and completion priced by the agreement in force at request time."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import service as bargaining_service
from bargaining.terms import load_founding_terms
from coop.db import utcnow
from dispatch.trips import queries
from dispatch.trips.models import Offer, OfferStatus, Trip, TripRequestKey
from reputation.models import RateableTrip
from tests.builders import (
    DOWNTOWN,
    LONGUEUIL,
    PLATEAU,
    Account,
    assigned_trip,
    consented,
    make_driver,
    make_rider,
    offer_to,
    place_driver,
    request_trip,
)

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


def problem(response: Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == type_, body
    assert body["status"] == status
    return body


async def shift(session: AsyncSession, trip_id: str, column: str, **delta: float) -> None:
    """Moves one of the trip's timestamps into the past (time passes without waiting)."""
    await session.execute(
        text(f"UPDATE trip SET {column} = {column} - CAST(:delta AS interval) WHERE id = :id"),
        {"delta": timedelta(**delta), "id": uuid.UUID(trip_id)},
    )
    await session.commit()


@pytest.fixture
async def rider(client: AsyncClient) -> Account:
    return await make_rider(client)


@pytest.fixture
async def driver(client: AsyncClient, admin_headers: dict[str, str]) -> Account:
    return await make_driver(client, admin_headers, name="Dana Driver")


# --- quotes ---------------------------------------------------------------------------------


async def test_quote_prices_the_estimated_route_with_the_agreement_in_force(
    client: AsyncClient, rider: Account
) -> None:
    response = await client.post(
        "/v1/quotes", json={"pickup": DOWNTOWN, "dropoff": PLATEAU}, headers=rider.headers
    )
    assert response.status_code == 200, response.text
    quote = response.json()
    assert set(quote) == {
        "total",
        "currency",
        "agreement_version",
        "distance_m",
        "duration_s",
        # The consent to a maximum price (docs/jurisdiction.md).
        "quote_id",
        "expires_at",
        "max_fare",
        "max_total",
        "lines",
        "estimated_total",
    }
    assert [line["kind"] for line in quote["lines"]] == ["fare_estimate", "dues", "tax", "tax"]
    assert quote["lines"][0]["amount"] == quote["total"]
    assert sum(Decimal(line["amount"]) for line in quote["lines"]) == Decimal(
        quote["estimated_total"]
    )
    assert Decimal(quote["max_fare"]) > Decimal(quote["total"])
    assert Decimal(quote["max_total"]) > Decimal(quote["estimated_total"])
    assert quote["currency"] == "CAD" and quote["agreement_version"] == 1
    assert 2500 < quote["distance_m"] < 3500  # 2.5 km as the crow flies, times the detour
    assert Decimal(quote["total"]) >= Decimal("7.00")
    assert quote["total"] == f"{Decimal(quote['total']):.2f}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pickup": LONGUEUIL, "dropoff": PLATEAU}, "pickup"),
        ({"pickup": DOWNTOWN, "dropoff": LONGUEUIL}, "dropoff"),
    ],
)
async def test_quote_and_request_outside_the_service_area_are_422(
    client: AsyncClient, rider: Account, body: dict[str, Any], field: str
) -> None:
    for path in ("/v1/quotes", "/v1/trips"):
        response = await client.post(path, json=body, headers=rider.headers)
        assert problem(response, 422, "out_of_service_area")["field"] == field


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"pickup": DOWNTOWN},
        {"pickup": {"lat": 91, "lon": 0}, "dropoff": PLATEAU},
        {"pickup": {"lat": "x", "lon": 0}, "dropoff": PLATEAU},
        {"pickup": DOWNTOWN, "dropoff": PLATEAU, "wheelchair_accessible": "maybe"},
        {"pickup": DOWNTOWN, "dropoff": PLATEAU, "surge": 2},
        [],
    ],
)
async def test_malformed_trip_requests_are_422_and_write_nothing(
    client: AsyncClient, rider: Account, session: AsyncSession, body: Any
) -> None:
    response = await client.post("/v1/trips", json=body, headers=rider.headers)
    problem(response, 422, "validation_error")
    assert (await session.scalars(select(Trip))).all() == []


async def test_only_riders_quote_and_request(
    client: AsyncClient, driver: Account, admin_headers: dict[str, str]
) -> None:
    body = {"pickup": DOWNTOWN, "dropoff": PLATEAU}
    for path in ("/v1/quotes", "/v1/trips"):
        problem(await client.post(path, json=body), 401, "unauthorized")
        problem(await client.post(path, json=body, headers=driver.headers), 403, "forbidden")
        problem(await client.post(path, json=body, headers=admin_headers), 403, "forbidden")


# --- requests -------------------------------------------------------------------------------


async def test_a_request_is_a_requested_trip_with_its_quote_and_agreement_version(
    client: AsyncClient, rider: Account
) -> None:
    trip = await request_trip(client, rider, pickup=DOWNTOWN, dropoff=PLATEAU)
    assert set(trip) == TRIP_KEYS
    assert trip["status"] == "requested"
    assert trip["rider_id"] == str(rider.id)
    assert trip["driver_id"] is None and trip["driver"] is None
    assert trip["pickup"] == DOWNTOWN and trip["dropoff"] == PLATEAU
    assert trip["quote"]["agreement_version"] == 1
    assert trip["fare"] is None
    read = await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)
    assert read.status_code == 200
    assert read.json() == trip


async def test_idempotency_key_retry_returns_the_same_trip_and_creates_nothing(
    client: AsyncClient, rider: Account, session: AsyncSession
) -> None:
    body = await consented(client, rider, {"pickup": DOWNTOWN, "dropoff": PLATEAU})
    headers = {**rider.headers, "Idempotency-Key": "a5f3c7e0-request-1"}
    first = await client.post("/v1/trips", json=body, headers=headers)
    again = await client.post("/v1/trips", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len((await session.scalars(select(Trip))).all()) == 1

    # The same key with another body is refused, and still creates nothing.
    other = await client.post(
        "/v1/trips", json={"pickup": PLATEAU, "dropoff": DOWNTOWN}, headers=headers
    )
    problem(other, 422, "idempotency_key_reused")
    assert len((await session.scalars(select(Trip))).all()) == 1


async def test_keys_belong_to_one_rider(client: AsyncClient, session: AsyncSession) -> None:
    ask = {"pickup": DOWNTOWN, "dropoff": PLATEAU}
    ada, bo = await make_rider(client, "Ada"), await make_rider(client, "Bo")
    body = await consented(client, ada, ask)
    one = await client.post("/v1/trips", json=body, headers={**ada.headers, "Idempotency-Key": "k"})
    body = await consented(client, bo, ask)
    two = await client.post("/v1/trips", json=body, headers={**bo.headers, "Idempotency-Key": "k"})
    assert one.status_code == two.status_code == 201
    assert one.json()["id"] != two.json()["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "na\u00efve"])
async def test_a_malformed_idempotency_key_is_422(
    client: AsyncClient, rider: Account, session: AsyncSession, key: str
) -> None:
    response = await client.post(
        "/v1/trips",
        json={"pickup": DOWNTOWN, "dropoff": PLATEAU},
        headers=[
            (b"Authorization", rider.headers["Authorization"].encode()),
            (b"Idempotency-Key", key.encode()),
        ],
    )
    problem(response, 422, "bad_idempotency_key")
    assert (await session.scalars(select(TripRequestKey))).all() == []


async def test_a_rider_with_a_trip_under_way_cannot_ask_for_another(
    client: AsyncClient, rider: Account, session: AsyncSession
) -> None:
    first = await request_trip(client, rider)
    body = await consented(client, rider, {"pickup": PLATEAU, "dropoff": DOWNTOWN})
    response = await client.post("/v1/trips", json=body, headers=rider.headers)
    assert problem(response, 409, "rider_has_open_trip")["trip_id"] == first["id"]
    assert len((await session.scalars(select(Trip))).all()) == 1
    # Once it is over, they can.
    cancelled = await client.post(f"/v1/trips/{first['id']}/cancel", headers=rider.headers)
    assert cancelled.status_code == 200
    await request_trip(client, rider)


# --- who may see and change a trip ----------------------------------------------------------


async def test_only_the_trips_rider_and_driver_may_read_it(
    app: FastAPI,
    client: AsyncClient,
    rider: Account,
    driver: Account,
    admin_headers: dict[str, str],
) -> None:
    trip = await assigned_trip(app, client, rider, driver)
    path = f"/v1/trips/{trip['id']}"
    assert (await client.get(path, headers=rider.headers)).status_code == 200
    assert (await client.get(path, headers=driver.headers)).status_code == 200
    stranger = await make_rider(client, "Stranger")
    other_driver = await make_driver(client, admin_headers, name="Other")
    problem(await client.get(path, headers=stranger.headers), 403, "not_your_trip")
    problem(await client.get(path, headers=other_driver.headers), 403, "not_your_trip")
    problem(await client.get(path, headers=admin_headers), 403, "not_your_trip")
    problem(await client.get(path), 401, "unauthorized")
    problem(
        await client.get(f"/v1/trips/{uuid.uuid4()}", headers=rider.headers), 404, "trip_not_found"
    )
    problem(
        await client.get("/v1/trips/not-a-uuid", headers=rider.headers), 422, "validation_error"
    )


async def test_another_driver_cannot_move_the_trip(
    app: FastAPI,
    client: AsyncClient,
    rider: Account,
    driver: Account,
    admin_headers: dict[str, str],
) -> None:
    trip = await assigned_trip(app, client, rider, driver)
    intruder = await make_driver(client, admin_headers, name="Intruder")
    for step in ("arrived", "start", "complete", "cancel"):
        response = await client.post(f"/v1/trips/{trip['id']}/{step}", headers=intruder.headers)
        problem(response, 403, "not_your_trip")
    # A rider cannot drive it either.
    problem(
        await client.post(f"/v1/trips/{trip['id']}/arrived", headers=rider.headers),
        403,
        "forbidden",
    )
    read = await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)
    assert read.json()["status"] == "assigned"


# --- the state machine ----------------------------------------------------------------------


async def test_transitions_out_of_order_are_409_invalid_transition(
    app: FastAPI, client: AsyncClient, rider: Account, driver: Account
) -> None:
    trip = await assigned_trip(app, client, rider, driver)
    path = f"/v1/trips/{trip['id']}"
    for step in ("start", "complete"):
        body = problem(
            await client.post(f"{path}/{step}", headers=driver.headers), 409, "invalid_transition"
        )
        assert body["trip_status"] == "assigned"
    assert (await client.post(f"{path}/arrived", headers=driver.headers)).status_code == 200
    problem(await client.post(f"{path}/arrived", headers=driver.headers), 409, "invalid_transition")
    problem(
        await client.post(f"{path}/complete", headers=driver.headers), 409, "invalid_transition"
    )
    assert (await client.post(f"{path}/start", headers=driver.headers)).status_code == 200
    # A ride under way ends with complete, not cancel.
    for caller in (rider, driver):
        problem(
            await client.post(f"{path}/cancel", headers=caller.headers), 409, "invalid_transition"
        )
    completed = await client.post(f"{path}/complete", headers=driver.headers)
    assert completed.status_code == 200
    for step in ("arrived", "start", "complete"):
        body = problem(
            await client.post(f"{path}/{step}", headers=driver.headers), 409, "invalid_transition"
        )
        assert body["trip_status"] == "completed"
    problem(await client.post(f"{path}/cancel", headers=rider.headers), 409, "invalid_transition")


async def test_every_step_stamps_its_time_and_completion_records_the_rateable_trip(
    app: FastAPI, client: AsyncClient, rider: Account, driver: Account, session: AsyncSession
) -> None:
    trip = await assigned_trip(app, client, rider, driver)
    path = f"/v1/trips/{trip['id']}"
    assert trip["assigned_at"] and trip["driver"]["name"] == "Dana Driver"
    arrived = (await client.post(f"{path}/arrived", headers=driver.headers)).json()
    assert arrived["status"] == "arrived" and arrived["arrived_at"]
    started = (await client.post(f"{path}/start", headers=driver.headers)).json()
    assert started["status"] == "in_progress" and started["started_at"]
    completed = (await client.post(f"{path}/complete", headers=driver.headers)).json()
    assert completed["status"] == "completed" and completed["ended_at"]
    # No position was reported after the start: nothing metered, the agreement's minimum fare.
    assert completed["fare"]["distance_m"] == 0
    assert completed["fare"]["total"] == "7.00"

    record = await session.scalar(select(RateableTrip))
    assert record is not None
    assert (record.trip_id, record.rider_id, record.driver_id) == (
        uuid.UUID(trip["id"]),
        rider.id,
        driver.id,
    )
    metered = await queries.completed_since(session, utcnow() - timedelta(hours=1))
    assert [(m.service_class, m.distance_m) for m in metered] == [("standard", 0)]


async def test_completion_prices_with_the_version_in_force_at_request_time(
    app: FastAPI, client: AsyncClient, rider: Account, driver: Account, session: AsyncSession
) -> None:
    trip = await assigned_trip(app, client, rider, driver)
    # A new agreement with a higher minimum comes into force while the trip is under way.
    raised = load_founding_terms().model_copy(deep=True)
    fares = dict(raised.fares)
    fares["standard"] = fares["standard"].model_copy(update={"minimum": Decimal("20.00")})
    raised = raised.model_copy(update={"fares": fares})
    await bargaining_service._add_version(
        session=session, terms=raised, effective_from=utcnow(), proposal_id=None
    )
    await session.commit()
    path = f"/v1/trips/{trip['id']}"
    for step in ("arrived", "start"):
        assert (await client.post(f"{path}/{step}", headers=driver.headers)).status_code == 200
    completed = (await client.post(f"{path}/complete", headers=driver.headers)).json()
    assert completed["fare"]["agreement_version"] == 1
    assert completed["fare"]["total"] == "7.00"
    # A trip requested now is quoted and priced under version 2.
    later = await request_trip(client, await make_rider(client, "Later"))
    assert later["quote"]["agreement_version"] == 2
    assert later["quote"]["total"] == "20.00"


# --- offers ---------------------------------------------------------------------------------


async def test_accepting_someone_elses_or_an_unknown_offer(
    app: FastAPI,
    client: AsyncClient,
    rider: Account,
    driver: Account,
    admin_headers: dict[str, str],
) -> None:
    await request_trip(client, rider)
    await place_driver(app, driver.id, DOWNTOWN)
    offer_id = await offer_to(app, driver)
    other = await make_driver(client, admin_headers, name="Other")
    for verb in ("accept", "decline"):
        problem(
            await client.post(f"/v1/offers/{offer_id}/{verb}", headers=other.headers),
            403,
            "not_your_offer",
        )
        problem(
            await client.post(f"/v1/offers/{uuid.uuid4()}/{verb}", headers=driver.headers),
            404,
            "offer_not_found",
        )
        problem(
            await client.post(f"/v1/offers/{offer_id}/{verb}", headers=rider.headers),
            403,
            "forbidden",
        )


async def test_an_expired_offer_cannot_be_accepted_and_the_trip_returns_to_matching(
    app: FastAPI,
    client: AsyncClient,
    rider: Account,
    driver: Account,
    admin_headers: dict[str, str],
    session: AsyncSession,
) -> None:
    trip = await request_trip(client, rider)
    await place_driver(app, driver.id, DOWNTOWN)
    offer_id = await offer_to(app, driver)
    # The offer reached the driver's socket (its receipt recorded), and lapsed.
    await session.execute(
        text(
            "UPDATE trip_offer SET delivered_at = now(), expires_at = now() - interval '1 second' "
            "WHERE id = :id"
        ),
        {"id": offer_id},
    )
    await session.commit()
    body = problem(
        await client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers),
        409,
        "offer_expired",
    )
    assert "expired" in body["detail"]
    # The sweep closes it; the next driver gets the trip, never the one who let it lapse.
    second = await make_driver(client, admin_headers, name="Second")
    await place_driver(app, second.id, PLATEAU)
    report = await app.state.matcher.run_batch()
    assert report.expired_offers == 1
    assert [(o.trip_id, o.driver_id) for o in report.offers] == [(uuid.UUID(trip["id"]), second.id)]
    assert (
        await session.get(Offer, offer_id, populate_existing=True)
    ).status is OfferStatus.expired  # type: ignore[union-attr]
    problem(
        await client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers),
        409,
        "offer_expired",
    )


async def test_accept_and_decline_are_idempotent_for_their_driver(
    app: FastAPI, client: AsyncClient, rider: Account, driver: Account
) -> None:
    trip = await request_trip(client, rider)
    await place_driver(app, driver.id, DOWNTOWN)
    offer_id = await offer_to(app, driver)
    first = await client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
    again = await client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == trip["id"] and again.json()["status"] == "assigned"
    # An accepted offer cannot be declined afterwards.
    problem(
        await client.post(f"/v1/offers/{offer_id}/decline", headers=driver.headers),
        409,
        "offer_expired",
    )


async def test_declining_twice_is_declining_once(
    app: FastAPI, client: AsyncClient, rider: Account, driver: Account
) -> None:
    await request_trip(client, rider)
    await place_driver(app, driver.id, DOWNTOWN)
    offer_id = await offer_to(app, driver)
    for _ in range(2):
        response = await client.post(f"/v1/offers/{offer_id}/decline", headers=driver.headers)
        assert response.status_code == 200
        assert response.json()["status"] == "declined"
    problem(
        await client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers),
        409,
        "offer_expired",
    )


# --- cancellation ---------------------------------------------------------------------------


async def test_a_rider_cancels_a_request_free_and_open_offers_are_withdrawn(
    app: FastAPI, client: AsyncClient, rider: Account, driver: Account, session: AsyncSession
) -> None:
    trip = await request_trip(client, rider)
    await place_driver(app, driver.id, DOWNTOWN)
    offer_id = await offer_to(app, driver)
    response = await client.post(
        f"/v1/trips/{trip['id']}/cancel", json={"reason": "plans changed"}, headers=rider.headers
    )
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert (cancelled["cancelled_by"], cancelled["cancel_reason"]) == ("rider", "plans changed")
    assert cancelled["cancellation_fee"] == "0.00"
    assert cancelled["ended_at"]
    offer = await session.get(Offer, offer_id)
    assert offer is not None and offer.status is OfferStatus.withdrawn
    problem(
        await client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers),
        409,
        "offer_expired",
    )
    problem(
        await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers),
        409,
        "invalid_transition",
    )


async def _cancel(client: AsyncClient, caller: Account, trip_id: str) -> dict[str, Any]:
    response = await client.post(f"/v1/trips/{trip_id}/cancel", headers=caller.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_cancellation_fee_follows_the_agreements_free_period(
    app: FastAPI, client: AsyncClient, driver: Account, session: AsyncSession
) -> None:
    # Within the free period (120 s in the founding agreement): free.
    early_rider = await make_rider(client, "Early")
    early = await assigned_trip(app, client, early_rider, driver)
    await shift(session, early["id"], "assigned_at", seconds=110)
    assert (await _cancel(client, early_rider, early["id"]))["cancellation_fee"] == "0.00"

    # After it: the agreement's fee (5.00), all of it the driver's.
    late_rider = await make_rider(client, "Late")
    late = await assigned_trip(app, client, late_rider, driver)
    await shift(session, late["id"], "assigned_at", seconds=121)
    cancelled = await _cancel(client, late_rider, late["id"])
    assert (cancelled["status"], cancelled["cancellation_fee"]) == ("cancelled", "5.00")
    row = await session.get(Trip, uuid.UUID(late["id"]))
    assert row is not None and row.cancellation_fee == Decimal("5.00")

    # Once arrived, the fee is still measured from the assignment.
    waiting_rider = await make_rider(client, "Waiting")
    waiting = await assigned_trip(app, client, waiting_rider, driver)
    assert (
        await client.post(f"/v1/trips/{waiting['id']}/arrived", headers=driver.headers)
    ).status_code == 200
    await shift(session, waiting["id"], "assigned_at", minutes=5)
    assert (await _cancel(client, waiting_rider, waiting["id"]))["cancellation_fee"] == "5.00"


async def test_a_driver_who_cancels_costs_the_rider_nothing(
    app: FastAPI, client: AsyncClient, rider: Account, driver: Account, session: AsyncSession
) -> None:
    trip = await assigned_trip(app, client, rider, driver)
    await shift(session, trip["id"], "assigned_at", minutes=10)
    cancelled = await _cancel(client, driver, trip["id"])
    assert (cancelled["status"], cancelled["cancelled_by"]) == ("cancelled", "driver")
    assert cancelled["cancellation_fee"] is None
    # The driver is free again: their open-trip slot is released.
    assert await queries.open_trip_of_driver(session=session, driver_id=driver.id) is None


async def test_a_driver_cannot_cancel_a_trip_that_is_not_theirs_yet(
    client: AsyncClient, rider: Account, driver: Account
) -> None:
    trip = await request_trip(client, rider)
    problem(
        await client.post(f"/v1/trips/{trip['id']}/cancel", headers=driver.headers),
        403,
        "not_your_trip",
    )


async def test_a_cancel_reason_is_bounded(client: AsyncClient, rider: Account) -> None:
    trip = await request_trip(client, rider)
    response = await client.post(
        f"/v1/trips/{trip['id']}/cancel", json={"reason": "x" * 501}, headers=rider.headers
    )
    problem(response, 422, "validation_error")


# --- unfulfilled ----------------------------------------------------------------------------


async def test_a_request_nobody_accepts_within_max_wait_ends_unfulfilled(
    app: FastAPI, client: AsyncClient, rider: Account, driver: Account, session: AsyncSession
) -> None:
    trip = await request_trip(client, rider)
    await place_driver(app, driver.id, DOWNTOWN)
    offer_id = await offer_to(app, driver)
    requested_at = await session.get(Trip, uuid.UUID(trip["id"]))
    assert requested_at is not None
    # max_wait_s is 300 in the founding agreement: one second before it, still waiting.
    report = await app.state.matcher.run_batch(
        now=requested_at.requested_at + timedelta(seconds=299)
    )
    assert report.unfulfilled == 0
    report = await app.state.matcher.run_batch(
        now=requested_at.requested_at + timedelta(seconds=300)
    )
    assert report.unfulfilled == 1
    read = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert read["status"] == "unfulfilled" and read["ended_at"]
    offer = await session.get(Offer, offer_id, populate_existing=True)
    # It lapsed unseen (no socket wrote it) at 15 s, or was withdrawn with the request.
    assert offer is not None and offer.status in {
        OfferStatus.expired,
        OfferStatus.undelivered,
        OfferStatus.withdrawn,
    }
    problem(
        await client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers),
        409,
        "offer_expired",
    )
    problem(
        await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers),
        409,
        "invalid_transition",
    )
    # The rider may ask again.
    await request_trip(client, rider)
