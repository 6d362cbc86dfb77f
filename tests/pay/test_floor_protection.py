"""The hourly floor cannot be farmed (docs/pay.md, "How the floor is protected"): a trip left open
ends by the agreement's terms, engaged time is bounded per trip, and the operators get a review
list. Over HTTP against the real database, Redis and matcher."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from coop.db import utcnow
from coop.settings import Settings
from server.app import create_app
from tests.bargaining.conftest import Clock
from tests.builders import (
    DOWNTOWN,
    Account,
    assigned_trip,
    live_server,
    make_driver,
    make_rider,
    place_driver,
    socket,
)
from tests.pay.helpers import completed_trip, problem, shift

# The founding agreement's terms (bargaining/founding_agreement.yaml).
NO_SHOW_WAIT_S = 300
OVERRUN_S = 300


async def _post(client: AsyncClient, path: str, account: Account) -> dict[str, Any]:
    response = await client.post(path, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _open_statement(client: AsyncClient, driver: Account) -> dict[str, Any]:
    [current] = (await client.get("/v1/drivers/me/statements", headers=driver.headers)).json()
    assert current["status"] == "open"
    return dict(current)


async def _waiting_at_own_pickup(
    app: FastAPI, client: AsyncClient, driver: Account
) -> tuple[Account, dict[str, Any]]:
    """The attack's set-up: the driver's own rider account asks for a trip where the driver
    stands; the driver accepts it and says they have arrived."""
    own_rider = await make_rider(client, "Second Phone")
    trip = await assigned_trip(app, client, own_rider, driver, at=DOWNTOWN)
    await _post(client, f"/v1/trips/{trip['id']}/arrived", driver)
    return own_rider, trip


async def test_waiting_at_ones_own_pickup_earns_no_top_up(
    app: FastAPI, client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    own_rider, trip = await _waiting_at_own_pickup(app, client, driver)
    # 9 s to "arrive", 900 s waiting; no sweep ran meanwhile, and the rider cancels.
    await shift(session, trip["id"], "assigned_at", 909)
    await shift(session, trip["id"], "arrived_at", 900)
    cancelled = await _post(client, f"/v1/trips/{trip['id']}/cancel", own_rider)
    assert cancelled["cancellation_fee"] == "5.00"

    statement = await _open_statement(client, driver)
    # Was: engaged 909, floor_due 6.06, top_up 1.06. The wait counts up to the no-show wait.
    assert statement["engaged_seconds"] == 9 + NO_SHOW_WAIT_S
    assert (statement["floor_due"], statement["top_up"], statement["pay_total"]) == (
        "2.06",
        "0.00",
        "5.00",
    )


async def test_waiting_at_ones_own_pickup_without_arriving_earns_no_top_up(
    app: FastAPI, client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    own_rider = await make_rider(client, "Second Phone")
    trip = await assigned_trip(app, client, own_rider, driver, at=DOWNTOWN)
    # Never says "arrived": 900 s standing at the pickup, then the rider cancels (the driver is
    # within the arrival radius, so the fee is due).
    await shift(session, trip["id"], "assigned_at", 900)
    await place_driver(app, driver.id, DOWNTOWN)
    cancelled = await _post(client, f"/v1/trips/{trip['id']}/cancel", own_rider)
    assert cancelled["cancellation_fee"] == "5.00"
    statement = await _open_statement(client, driver)
    # The offer's pickup estimate was 0 s: the pickup counts up to the overrun alone.
    assert statement["engaged_seconds"] == OVERRUN_S
    assert (statement["floor_due"], statement["top_up"]) == ("2.00", "0.00")


async def test_an_arrived_trip_becomes_a_no_show_after_the_agreements_wait(
    settings: Settings, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    app = create_app(settings)
    async with live_server(app) as base_url, AsyncClient(base_url=base_url) as client:
        driver = await make_driver(client, admin_headers)
        own_rider, trip = await _waiting_at_own_pickup(app, client, driver)
        async with (
            socket(base_url, "/v1/ws/driver", driver.token) as driver_socket,
            socket(base_url, "/v1/ws/rider", own_rider.token) as rider_socket,
        ):
            await shift(session, trip["id"], "assigned_at", NO_SHOW_WAIT_S - 50)
            await shift(session, trip["id"], "arrived_at", NO_SHOW_WAIT_S - 60)
            await app.state.matcher.run_batch()
            read = (await client.get(f"/v1/trips/{trip['id']}", headers=driver.headers)).json()
            assert read["status"] == "arrived" and read["timed_out"] is None

            await shift(session, trip["id"], "assigned_at", 70)
            await shift(session, trip["id"], "arrived_at", 70)
            await app.state.matcher.run_batch()
            # Both parties are told, each with their own view of the trip.
            for pushed in (
                await rider_socket.trip("cancelled"),
                await driver_socket.trip("cancelled"),
            ):
                assert (pushed["id"], pushed["timed_out"]) == (trip["id"], "no_show")
        ended = (await client.get(f"/v1/trips/{trip['id']}", headers=own_rider.headers)).json()
        assert (ended["status"], ended["timed_out"], ended["cancelled_by"]) == (
            "cancelled",
            "no_show",
            "rider",
        )
        # The fee rules apply: the driver had arrived and the free period was over.
        assert ended["cancellation_fee"] == "5.00"
        assert "no-show" in ended["cancellation_fee_reason"]
        # Nothing is left to cancel or start.
        problem(
            await client.post(f"/v1/trips/{trip['id']}/cancel", headers=own_rider.headers),
            409,
            "invalid_transition",
        )
        problem(
            await client.post(f"/v1/trips/{trip['id']}/start", headers=driver.headers),
            409,
            "invalid_transition",
        )
        statement = await _open_statement(client, driver)
        assert statement["engaged_seconds"] <= 10 + NO_SHOW_WAIT_S
        assert statement["top_up"] == "0.00"


async def _under_way(
    app: FastAPI, client: AsyncClient, driver: Account
) -> tuple[Account, dict[str, Any], int]:
    rider = await make_rider(client)
    trip = await assigned_trip(app, client, rider, driver, at=DOWNTOWN)
    await _post(client, f"/v1/trips/{trip['id']}/arrived", driver)
    started = await _post(client, f"/v1/trips/{trip['id']}/start", driver)
    quote_s = int(started["quote"]["duration_s"])
    return rider, started, 2 * quote_s + OVERRUN_S


async def test_a_ride_past_its_plausible_length_is_ended_for_review(
    app: FastAPI, client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    rider, trip, plausible_s = await _under_way(app, client, driver)
    await shift(session, trip["id"], "started_at", plausible_s - 30)
    await app.state.matcher.run_batch()
    still = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert still["status"] == "in_progress"

    await shift(session, trip["id"], "started_at", 3600)
    await app.state.matcher.run_batch()
    ended = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert (ended["status"], ended["timed_out"]) == ("completed", "ride_overrun")
    # Metered only up to its plausible end, not the hour it was left open.
    assert ended["fare"]["duration_s"] == plausible_s
    problem(
        await client.post(f"/v1/trips/{trip['id']}/complete", headers=driver.headers),
        409,
        "invalid_transition",
    )
    statement = await _open_statement(client, driver)
    assert statement["engaged_seconds"] <= OVERRUN_S + plausible_s + 5

    review = await client.get("/v1/pay/review", headers=admin_headers)
    assert review.status_code == 200, review.text
    [overrun] = review.json()["overrun_rides"]
    assert (overrun["trip_id"], overrun["driver_id"]) == (trip["id"], str(driver.id))


async def test_a_ride_completed_late_counts_only_its_plausible_length(
    app: FastAPI, client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    _, trip, plausible_s = await _under_way(app, client, driver)
    # Two hours "under way", completed by the driver before any sweep saw it.
    await shift(session, trip["id"], "started_at", 7200)
    await _post(client, f"/v1/trips/{trip['id']}/complete", driver)
    statement = await _open_statement(client, driver)
    assert plausible_s <= statement["engaged_seconds"] <= plausible_s + 5


async def test_operators_get_a_review_list_that_acts_on_no_one(
    app: FastAPI, client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    clock = Clock(utcnow())
    app.state.clock = clock
    farmer = await make_driver(client, admin_headers, name="Farmer")
    own_rider = await make_rider(client, "Second Phone")
    # Three trips with their own rider account, picked up where they stand; an hour engaged on
    # the first: 3720 s engaged, 24.80 due, 19.32 earned, a top-up of 5.48 when the others earn
    # above the floor.
    for engaged_s in (3600, 60, 60):
        await completed_trip(app, client, session, own_rider, farmer, engaged_s=engaged_s)
    others = [await make_driver(client, admin_headers, name=f"Other {n}") for n in range(2)]
    for other in others:
        rider = await make_rider(client, "A Stranger")
        await completed_trip(app, client, session, rider, other, engaged_s=60)
        # Their pickup was a kilometre away: not "at the driver's position".
        await session.execute(
            text(
                "UPDATE trip_offer SET pickup_distance_m = 1000 "
                "WHERE driver_id = :id AND status = 'accepted'"
            ),
            {"id": other.id},
        )
        await session.commit()

    for forbidden in (farmer, own_rider):
        problem(await client.get("/v1/pay/review", headers=forbidden.headers), 403, "forbidden")
    problem(
        await client.get("/v1/pay/review?days=0", headers=admin_headers), 422, "validation_error"
    )

    clock.advance(days=15)  # the period closes
    review = await client.get("/v1/pay/review?days=30", headers=admin_headers)
    assert review.status_code == 200, review.text
    body = review.json()
    [pair] = body["repeated_pairs"]
    assert (pair["driver_id"], pair["rider_id"], pair["trips"]) == (
        str(farmer.id),
        str(own_rider.id),
        3,
    )
    assert {row["driver_id"] for row in body["new_riders_at_driver"]} == {str(farmer.id)}
    assert len(body["new_riders_at_driver"]) == 3
    [high] = body["high_top_ups"]
    assert (high["driver_id"], high["median_top_up"]) == (str(farmer.id), "0.00")
    # 5.48 for the 3720 s the trips were set back by, and 24.00 an hour more for the real
    # seconds the three trips' steps took on this machine (a busy one: up to 15 s).
    assert Decimal("5.48") <= Decimal(high["top_up"]) <= Decimal("5.58"), high
    assert body["overrun_rides"] == []
    # A list, not an action: the farmer can still take trips.
    await place_driver(app, farmer.id, DOWNTOWN)
    me = await client.get("/v1/drivers/me", headers=farmer.headers)
    assert me.status_code == 200 and me.json()["status"] == "active"
