"""Races against the real PostgreSQL: whatever interleaving, never a double assignment, never a
half-written trip. Each request below runs in its own session and transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from coop.db import utcnow
from dispatch.matching.matcher import BatchReport, Matcher
from dispatch.trips import offers as trip_offers
from dispatch.trips.models import Offer, OfferStatus, Trip, TripStatus
from tests.builders import (
    DOWNTOWN,
    PLATEAU,
    assigned_trip,
    consented,
    make_driver,
    make_rider,
    offer_to,
    place_driver,
    request_trip,
)


async def _post(client: AsyncClient, path: str, headers: dict[str, str], **kwargs: Any) -> Response:
    return await client.post(path, headers=headers, **kwargs)


async def _trip(session: AsyncSession, trip_id: str | uuid.UUID) -> Trip:
    trip = await session.get(Trip, uuid.UUID(str(trip_id)), populate_existing=True)
    assert trip is not None
    return trip


async def test_a_double_tapped_accept_assigns_once(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip = await request_trip(client, rider)
    await place_driver(app, driver.id, DOWNTOWN)
    offer_id = await offer_to(app, driver)
    answers = await asyncio.gather(
        *(_post(client, f"/v1/offers/{offer_id}/accept", driver.headers) for _ in range(4))
    )
    assert [a.status_code for a in answers] == [200] * 4
    assert {a.json()["assigned_at"] for a in answers} == {answers[0].json()["assigned_at"]}
    row = await _trip(session, trip["id"])
    assert (row.status, row.driver_id) == (TripStatus.assigned, driver.id)


async def test_two_drivers_accepting_one_trip_never_both_get_it(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    rider = await make_rider(client)
    first = await make_driver(client, admin_headers, name="First")
    second = await make_driver(client, admin_headers, name="Second")
    trip = await request_trip(client, rider)
    await place_driver(app, first.id, DOWNTOWN)
    first_offer = await offer_to(app, first)
    # The first offer reaches the first driver's socket but lapses, and the trip is offered to
    # the second driver; then both accept at once (the first with an offer past its deadline).
    await session.execute(
        text("UPDATE trip_offer SET delivered_at = now() WHERE id = :id"), {"id": first_offer}
    )
    await session.commit()
    await place_driver(app, second.id, PLATEAU)
    report = await app.state.matcher.run_batch(now=utcnow() + timedelta(seconds=16))
    assert report.expired_offers == 1
    second_offer = next(o.id for o in report.offers if o.driver_id == second.id)
    late, on_time = await asyncio.gather(
        _post(client, f"/v1/offers/{first_offer}/accept", first.headers),
        _post(client, f"/v1/offers/{second_offer}/accept", second.headers),
    )
    assert late.status_code == 409 and late.json()["type"] == "offer_expired"
    assert on_time.status_code == 200
    row = await _trip(session, trip["id"])
    assert (row.status, row.driver_id) == (TripStatus.assigned, second.id)


async def _lock_waiters(session: AsyncSession) -> int:
    """How many connections to the test database wait for a lock right now."""
    count = await session.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    )
    await session.commit()
    return int(count or 0)


async def _until_waiting(session: AsyncSession, waiters: int, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while await _lock_waiters(session) < waiters:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{waiters} lock waiters not reached")
        await asyncio.sleep(0.005)


async def _accept_against_sweep(
    app: FastAPI,
    session: AsyncSession,
    *,
    accept: Awaitable[Response],
    sweep: Awaitable[BatchReport],
    offer_id: uuid.UUID,
    accept_first: bool | None,
) -> Response:
    """Runs the accept and the sweep at once and answers the accept's response. With
    `accept_first` given, both are lined up behind a lock on the offer's row first."""
    if accept_first is None:
        accepted, _ = await asyncio.gather(accept, sweep)
        return accepted
    ahead, behind = (accept, sweep) if accept_first else (sweep, accept)
    async with app.state.sessionmaker() as gate:
        await gate.execute(select(Offer.id).where(Offer.id == offer_id).with_for_update())
        first = asyncio.ensure_future(ahead)
        await _until_waiting(session, 1)
        second = asyncio.ensure_future(behind)
        await _until_waiting(session, 2)
        await gate.commit()  # both go on; the row goes to the one that asked first
    done = await asyncio.gather(first, second)
    answer = done[0] if accept_first else done[1]
    assert isinstance(answer, Response)
    return answer


async def test_accept_racing_the_expiry_sweep_has_one_outcome(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    """The accept and the sweep are both right by their own clocks: the driver taps accept on
    time, and the sweep runs with its clock past the offer's deadline (as a worker whose batch
    started late does). Whichever takes the offer's row first wins, and the other sees it.

    In the first rounds both are in flight at once, lined up behind a lock the test holds on the
    offer's row and released together, each side first in turn (PostgreSQL grants the row in
    the order they asked); the last round is left to the event loop. Over the rounds both
    outcomes happen, so each branch below is exercised."""
    outcomes: list[int] = []
    for round_ in range(5):
        rider = await make_rider(client)
        driver = await make_driver(client, admin_headers)
        trip = await request_trip(client, rider)
        await place_driver(app, driver.id, DOWNTOWN)
        offer_id = await offer_to(app, driver)
        # The offer reached the driver's screen (its receipt is recorded).
        await trip_offers.mark_delivered(session=session, offer_ids=[offer_id], now=utcnow())
        offered = await session.get(Offer, offer_id, populate_existing=True)
        assert offered is not None and offered.expires_at > utcnow()
        sweep_at = offered.expires_at + timedelta(seconds=1)
        await session.commit()

        lined_up = round_ < 4
        accepted = await _accept_against_sweep(
            app,
            session,
            accept=_post(client, f"/v1/offers/{offer_id}/accept", driver.headers),
            sweep=app.state.matcher.run_batch(now=sweep_at),
            offer_id=offer_id,
            accept_first=round_ % 2 == 0 if lined_up else None,
        )
        offer = await session.get(Offer, offer_id, populate_existing=True)
        row = await _trip(session, trip["id"])
        assert offer is not None
        outcomes.append(accepted.status_code)
        if accepted.status_code == 200:
            assert offer.status is OfferStatus.accepted
            assert (row.status, row.driver_id) == (TripStatus.assigned, driver.id)
        else:
            assert accepted.status_code == 409
            assert accepted.json()["type"] == "offer_expired"
            assert offer.status is OfferStatus.expired
            assert (row.status, row.driver_id) == (TripStatus.requested, None)
        if lined_up:  # the first in line won
            assert accepted.status_code == (200 if round_ % 2 == 0 else 409)
        # Clean slate for the next round: this rider's trip ends, this driver goes off duty.
        await _post(client, f"/v1/trips/{trip['id']}/cancel", rider.headers)
        await place_driver(app, driver.id, DOWNTOWN, available=False)
    assert {200, 409} <= set(outcomes)


async def test_accept_racing_the_riders_cancel_is_consistent(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    for _ in range(5):
        rider = await make_rider(client)
        driver = await make_driver(client, admin_headers)
        trip = await request_trip(client, rider)
        await place_driver(app, driver.id, DOWNTOWN)
        offer_id = await offer_to(app, driver)
        accepted, cancelled = await asyncio.gather(
            _post(client, f"/v1/offers/{offer_id}/accept", driver.headers),
            _post(client, f"/v1/trips/{trip['id']}/cancel", rider.headers),
        )
        assert cancelled.status_code == 200  # a rider can always cancel before the ride
        row = await _trip(session, trip["id"])
        offer = await session.get(Offer, offer_id, populate_existing=True)
        assert offer is not None and row.status is TripStatus.cancelled
        if accepted.status_code == 200:  # the accept came first: the driver was assigned
            assert offer.status is OfferStatus.accepted and row.driver_id == driver.id
            assert row.assigned_at is not None
        else:  # the cancel came first: the offer was withdrawn and nobody assigned
            assert accepted.json()["type"] == "offer_expired"
            assert offer.status is OfferStatus.withdrawn and row.driver_id is None
        await place_driver(app, driver.id, DOWNTOWN, available=False)


async def test_two_matchers_batching_at_once_never_double_offer(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    riders = [await make_rider(client, f"Rider {i}") for i in range(4)]
    drivers = [await make_driver(client, admin_headers, name=f"Driver {i}") for i in range(3)]
    for rider in riders:
        await request_trip(client, rider)
    for i, driver in enumerate(drivers):
        await place_driver(app, driver.id, {"lat": 45.5017 + i * 0.002, "lon": -73.5673})
    # Two workers' matchers (as if both believed they led) run the same batch at once.
    other = Matcher(
        engine=app.state.engine,
        sessionmaker=app.state.sessionmaker,
        redis=app.state.redis,
        settings=app.state.settings,
    )
    one, two = await asyncio.gather(app.state.matcher.run_batch(), other.run_batch())
    made = one.offers + two.offers
    assert len(made) == 3  # three drivers, so three offers in all, whoever wrote them
    pending = (
        await session.execute(
            select(Offer.trip_id, Offer.driver_id).where(Offer.status == OfferStatus.pending)
        )
    ).all()
    assert len(pending) == 3
    assert len({trip_id for trip_id, _ in pending}) == 3
    assert len({driver_id for _, driver_id in pending}) == 3


async def test_one_driver_cannot_hold_two_trips(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    driver = await make_driver(client, admin_headers)
    first_rider, second_rider = await make_rider(client, "One"), await make_rider(client, "Two")
    await assigned_trip(app, client, first_rider, driver)
    second = await request_trip(client, second_rider)
    # An offer written just as the driver accepted another (the matcher's race): accepting it
    # must fail, and leave the second trip waiting for someone else.
    stray = uuid.uuid4()
    await session.execute(
        text(
            "INSERT INTO trip_offer (id, trip_id, driver_id, status, created_at, expires_at,"
            " pickup_distance_m, pickup_eta_s, idle_s, cost, why)"
            " VALUES (:id, :trip, :driver, 'pending', now(), now() + interval '15 seconds',"
            " 100, 16, 0, 16, 'test')"
        ),
        {"id": stray, "trip": uuid.UUID(second["id"]), "driver": driver.id},
    )
    await session.commit()
    refused = await _post(client, f"/v1/offers/{stray}/accept", driver.headers)
    assert refused.status_code == 409 and refused.json()["type"] == "driver_busy"
    row = await _trip(session, second["id"])
    assert (row.status, row.driver_id) == (TripStatus.requested, None)
    open_trips = await session.scalar(
        select(func.count())
        .select_from(Trip)
        .where(
            Trip.driver_id == driver.id,
            Trip.status.in_([TripStatus.assigned, TripStatus.arrived, TripStatus.in_progress]),
        )
    )
    assert open_trips == 1


async def test_accept_racing_a_batch_for_the_same_driver_leaves_one_trip(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    driver = await make_driver(client, admin_headers)
    first = await request_trip(client, await make_rider(client, "One"))
    await place_driver(app, driver.id, DOWNTOWN)
    offer_id = await offer_to(app, driver)
    second = await request_trip(client, await make_rider(client, "Two"))
    accepted, report = await asyncio.gather(
        _post(client, f"/v1/offers/{offer_id}/accept", driver.headers),
        app.state.matcher.run_batch(),
    )
    assert accepted.status_code == 200
    assert (await _trip(session, first["id"])).driver_id == driver.id
    # Whatever the batch did, the second trip cannot go to the same driver.
    for offer in report.offers:
        answer = await _post(client, f"/v1/offers/{offer.id}/accept", driver.headers)
        assert answer.status_code == 409
    assert (await _trip(session, second["id"])).status is TripStatus.requested


async def test_concurrent_retries_with_one_idempotency_key_make_one_trip(
    client: AsyncClient, session: AsyncSession
) -> None:
    rider = await make_rider(client)
    body = await consented(client, rider, {"pickup": DOWNTOWN, "dropoff": PLATEAU})
    headers = {**rider.headers, "Idempotency-Key": str(uuid.uuid4())}
    answers = await asyncio.gather(
        *(_post(client, "/v1/trips", headers, json=body) for _ in range(6))
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 200, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert await session.scalar(select(func.count()).select_from(Trip)) == 1


async def test_concurrent_requests_without_a_key_leave_one_open_trip(
    client: AsyncClient, session: AsyncSession
) -> None:
    rider = await make_rider(client)
    ask = {"pickup": DOWNTOWN, "dropoff": PLATEAU}
    bodies = [await consented(client, rider, ask) for _ in range(4)]
    answers = await asyncio.gather(
        *(_post(client, "/v1/trips", rider.headers, json=body) for body in bodies)
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]
    assert {a.json()["type"] for a in answers if a.status_code == 409} == {"rider_has_open_trip"}
    assert await session.scalar(select(func.count()).select_from(Trip)) == 1


async def test_rider_and_driver_cancelling_at_once_cancel_once(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip = await assigned_trip(app, client, rider, driver)
    by_rider, by_driver = await asyncio.gather(
        _post(client, f"/v1/trips/{trip['id']}/cancel", rider.headers),
        _post(client, f"/v1/trips/{trip['id']}/cancel", driver.headers),
    )
    statuses = sorted([by_rider.status_code, by_driver.status_code])
    assert statuses == [200, 409]
    loser = by_rider if by_rider.status_code == 409 else by_driver
    assert loser.json()["type"] == "invalid_transition"
    row = await _trip(session, trip["id"])
    winner = "rider" if by_rider.status_code == 200 else "driver"
    assert row.status is TripStatus.cancelled and row.cancelled_by == winner


async def test_arrived_twice_at_once_moves_once(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip = await assigned_trip(app, client, rider, driver)
    answers = await asyncio.gather(
        *(_post(client, f"/v1/trips/{trip['id']}/arrived", driver.headers) for _ in range(3))
    )
    assert sorted(a.status_code for a in answers) == [200, 409, 409]
    assert (await _trip(session, trip["id"])).status is TripStatus.arrived


async def test_one_driver_accepting_two_offers_at_once_gets_one_trip(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    driver = await make_driver(client, admin_headers)
    first = await request_trip(client, await make_rider(client, "One"))
    await place_driver(app, driver.id, DOWNTOWN)
    stale_offer = await offer_to(app, driver)
    # The database holds at most one open offer per driver: a second is refused outright.
    second = await request_trip(client, await make_rider(client, "Two"))
    with pytest.raises(IntegrityError):
        await session.execute(
            text(
                "INSERT INTO trip_offer (id, trip_id, driver_id, status, created_at, expires_at,"
                " pickup_distance_m, pickup_eta_s, idle_s, cost, why) VALUES (:id, :trip,"
                " :driver, 'pending', now(), now() + interval '15 seconds', 1, 1, 0, 1, 'x')"
            ),
            {"id": uuid.uuid4(), "trip": uuid.UUID(second["id"]), "driver": driver.id},
        )
    await session.rollback()
    # So "two offers at once" is an open one and one that lapsed: both accepted together, the
    # lapsed one is refused and the driver ends with exactly one trip.
    report = await app.state.matcher.run_batch(now=utcnow() + timedelta(seconds=16))
    fresh_offer = next(o.id for o in report.offers if o.driver_id == driver.id)
    stale, fresh = await asyncio.gather(
        _post(client, f"/v1/offers/{stale_offer}/accept", driver.headers),
        _post(client, f"/v1/offers/{fresh_offer}/accept", driver.headers),
    )
    assert stale.status_code == 409 and stale.json()["type"] == "offer_expired"
    assert fresh.status_code == 200
    held = {(await _trip(session, t["id"])).driver_id for t in (first, second)}
    assert held == {driver.id, None}
