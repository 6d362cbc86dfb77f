"""The matcher against the real PostGIS: who is a candidate, the fairness term's effect, the
offers it writes, its sweeps, and leadership by advisory lock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import service as bargaining_service
from bargaining.service import FOUNDING_EFFECTIVE_FROM
from bargaining.terms import load_founding_terms
from coop.db import utcnow
from dispatch.matching import costs
from dispatch.matching.matcher import BatchReport, Matcher, region_lock_key
from dispatch.trips import service as trips_service
from dispatch.trips.models import Offer, OfferStatus, Trip, TripStatus
from tests.builders import (
    DOWNTOWN,
    Account,
    make_driver,
    make_rider,
    north,
    place_driver,
    request_trip,
)
from tests.polling import until


async def _offers(session: AsyncSession, trip_id: str) -> list[Offer]:
    rows = await session.scalars(
        select(Offer)
        .where(Offer.trip_id == uuid.UUID(trip_id))
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def _waiting_since(session: AsyncSession, driver: Account, minutes: float) -> None:
    """The driver came on duty `minutes` ago and has had no trip since."""
    await session.execute(
        text(
            "UPDATE location_driver_position SET available_since = now() - CAST(:wait AS interval)"
            " WHERE driver_id = :id"
        ),
        {"wait": timedelta(minutes=minutes), "id": driver.id},
    )
    await session.commit()


async def test_the_nearest_driver_gets_the_offer_with_its_reasons(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    rider = await make_rider(client)
    near = await make_driver(client, admin_headers, name="Near")
    far = await make_driver(client, admin_headers, name="Far")
    trip = await request_trip(client, rider)
    await place_driver(app, near.id, north(300))
    await place_driver(app, far.id, north(2000))
    report = await app.state.matcher.run_batch()
    assert (report.requests, report.candidates) == (1, 2)
    [offer] = report.offers
    assert offer.driver_id == near.id
    assert 295 <= offer.pickup_distance_m <= 305
    assert offer.pickup_eta_s == costs.pickup_eta_s(offer.pickup_distance_m)
    assert offer.why.startswith("0.3 km away, under a minute;")
    assert offer.why.endswith("; you came on duty under a minute ago")
    assert offer.expires_at - offer.created_at == timedelta(seconds=15)  # offer_timeout_s
    # One open offer per trip: a second batch leaves it alone.
    again = await app.state.matcher.run_batch()
    assert again.offers == [] and again.requests == 0
    assert len(await _offers(session, trip["id"])) == 1


async def test_wheelchair_requests_go_only_to_accessible_vehicles(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    search_side: str,
) -> None:
    rider = await make_rider(client)
    plain = await make_driver(client, admin_headers, name="Plain")
    accessible = await make_driver(client, admin_headers, name="Ramp", wheelchair_accessible=True)
    await place_driver(app, plain.id, north(100))
    trip = await request_trip(client, rider, wheelchair_accessible=True)
    assert trip["wheelchair_accessible"] is True
    # Only a nearer standard vehicle: no offer at all.
    report = await app.state.matcher.run_batch()
    assert (report.candidates, report.offers) == (0, [])
    await place_driver(app, accessible.id, north(3000))
    report = await app.state.matcher.run_batch()
    assert [o.driver_id for o in report.offers] == [accessible.id]
    # An accessible vehicle takes standard requests too.
    row = await session.get(Trip, uuid.UUID(trip["id"]))
    assert row is not None and row.service_class == "accessible"


async def test_a_driver_who_declined_or_let_an_offer_expire_is_not_offered_that_trip_again(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    search_side: str,
) -> None:
    rider = await make_rider(client)
    decliner = await make_driver(client, admin_headers, name="Decliner")
    sleeper = await make_driver(client, admin_headers, name="Sleeper")
    trip = await request_trip(client, rider)
    await place_driver(app, decliner.id, north(100))
    await place_driver(app, sleeper.id, north(500))
    first = (await app.state.matcher.run_batch()).offers[0]
    assert first.driver_id == decliner.id
    declined = await client.post(f"/v1/offers/{first.id}/decline", headers=decliner.headers)
    assert declined.status_code == 200

    second = (await app.state.matcher.run_batch()).offers[0]
    assert second.driver_id == sleeper.id
    # The offer reached the sleeper's socket (the holding worker records it) ...
    await trips_service.mark_delivered(session=session, offer_ids=[second.id], now=utcnow())
    # ... who lets it lapse (the batch runs 16 s later, past the 15 s timeout).
    report = await app.state.matcher.run_batch(now=utcnow() + timedelta(seconds=16))
    assert report.expired_offers == 1 and report.offers == []
    assert report.candidates == 0  # both drivers excluded for this trip ...
    other = await request_trip(client, await make_rider(client, "Other"))
    report = await app.state.matcher.run_batch()
    assert {o.trip_id for o in report.offers} == {uuid.UUID(other["id"])}  # ... but not others
    statuses = {o.driver_id: o.status for o in await _offers(session, trip["id"])}
    assert statuses == {decliner.id: OfferStatus.declined, sleeper.id: OfferStatus.expired}


async def test_a_withdrawn_offer_does_not_exclude_the_driver(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    await request_trip(client, rider)
    await place_driver(app, driver.id, north(100))
    first = (await app.state.matcher.run_batch()).offers[0]
    # Going off duty withdraws the open offer; back on duty, the trip may come back to them.
    await place_driver(app, driver.id, north(100), available=False)
    async with app.state.sessionmaker() as session:
        from dispatch.trips import service as trips_service

        withdrawn = await trips_service.withdraw_offers_of_driver(
            session=session, driver_id=driver.id, now=utcnow()
        )
        await session.commit()
    assert [w.offer_id for w in withdrawn] == [first.id]
    assert (await app.state.matcher.run_batch()).offers == []  # off duty
    await place_driver(app, driver.id, north(100))
    assert [o.driver_id for o in (await app.state.matcher.run_batch()).offers] == [driver.id]


async def test_unavailable_silent_busy_far_and_inactive_drivers_get_no_offers(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    search_side: str,
) -> None:
    off_duty = await make_driver(client, admin_headers, name="Off duty")
    silent = await make_driver(client, admin_headers, name="Silent")
    busy = await make_driver(client, admin_headers, name="Busy")
    too_far = await make_driver(client, admin_headers, name="Too far")
    inactive = await make_driver(client, admin_headers, name="Inactive")
    await place_driver(app, off_duty.id, north(100), available=False)
    await place_driver(app, silent.id, north(150))
    await place_driver(app, too_far.id, north(6100))  # max_pickup_distance_m is 6000
    await place_driver(app, inactive.id, north(200))
    await session.execute(
        text("UPDATE driver SET status = 'inactive' WHERE id = :id"), {"id": inactive.id}
    )
    # Silent for longer than the grace period (COOP_DRIVER_GRACE_S).
    grace = app.state.settings.driver_grace_s
    await session.execute(
        text(
            "UPDATE location_driver_position SET last_seen_at = now() - CAST(:ago AS interval)"
            " WHERE driver_id = :id"
        ),
        {"ago": timedelta(seconds=grace + 1), "id": silent.id},
    )
    await session.commit()
    # Busy: holds a trip already.
    await place_driver(app, busy.id, north(50))
    busy_trip = await request_trip(client, await make_rider(client, "Busy's rider"))
    offer = (await app.state.matcher.run_batch()).offers[0]
    assert offer.driver_id == busy.id
    assert (
        await client.post(f"/v1/offers/{offer.id}/accept", headers=busy.headers)
    ).status_code == 200
    assert busy_trip

    await request_trip(client, await make_rider(client))
    report = await app.state.matcher.run_batch()
    assert (report.requests, report.candidates, report.offers) == (1, 0, [])

    # Within the grace period a silent driver is still offered trips.
    await session.execute(
        text(
            "UPDATE location_driver_position SET last_seen_at = now() - CAST(:ago AS interval)"
            " WHERE driver_id = :id"
        ),
        {"ago": timedelta(seconds=grace - 5), "id": silent.id},
    )
    await session.commit()
    assert [o.driver_id for o in (await app.state.matcher.run_batch()).offers] == [silent.id]


async def test_the_fairness_term_favours_a_driver_who_waited_long(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    search_side: str,
) -> None:
    # The linear credit with no bound (the founding agreement's before the bound existed).
    await _dispatch_terms(
        session,
        fairness_weight=Decimal("0.2"),
        fairness_credit_max_s=None,
        earnings_credit_max_s=None,
    )
    near = await make_driver(client, admin_headers, name="Just came on")
    waited = await make_driver(client, admin_headers, name="Waited 50 min")
    await place_driver(app, near.id, north(500))
    await place_driver(app, waited.id, north(1500))
    # Equal waits: distance decides.
    first_rider = await make_rider(client, "First")
    trip = await request_trip(client, first_rider)
    assert (await app.state.matcher.run_batch()).offers[0].driver_id == near.id
    cancelled = await client.post(f"/v1/trips/{trip['id']}/cancel", headers=first_rider.headers)
    assert cancelled.status_code == 200

    # One waited 50 minutes, the other just came on: 1 km farther is worth it.
    await _waiting_since(session, waited, minutes=50)
    await _waiting_since(session, near, minutes=0)
    second_rider = await make_rider(client, "Second")
    second = await request_trip(client, second_rider)
    [offer] = (await app.state.matcher.run_batch()).offers
    assert offer.driver_id == waited.id
    # The why names the fairness part: without it, the nearer driver would have had the trip.
    assert offer.why.endswith(
        "waiting 50 min since you came on duty; fairness gave you this trip over a driver 1.0 km"
        " nearer: they had waited under a minute, you 50 min"
    )
    eta_near, eta_far = costs.pickup_eta_s(500), costs.pickup_eta_s(1500)
    assert offer.cost == costs.edge_cost(
        pickup_eta_s=eta_far, idle_s=offer.idle_s, fairness_weight=Decimal("0.2")
    )
    assert offer.cost < eta_near  # the credit outweighs the longer drive

    # With the fairness weight at 0 (an agreement the members could vote), distance alone.
    cancelled = await client.post(f"/v1/trips/{second['id']}/cancel", headers=second_rider.headers)
    assert cancelled.status_code == 200
    terms = load_founding_terms()
    dispatch_terms = terms.dispatch.model_copy(update={"fairness_weight": Decimal("0")})
    await bargaining_service._add_version(
        session=session,
        terms=terms.model_copy(update={"dispatch": dispatch_terms}),
        effective_from=utcnow(),
        proposal_id=None,
    )
    await session.commit()
    await request_trip(client, await make_rider(client, "Third"))
    [offer] = (await app.state.matcher.run_batch()).offers
    assert offer.driver_id == near.id


async def _dispatch_terms(session: AsyncSession, **changes: object) -> None:
    """Puts in force a version of the agreement whose dispatch terms differ by `changes`."""
    terms = load_founding_terms()
    dispatch_terms = terms.dispatch.model_copy(update=changes)
    await bargaining_service._add_version(
        session=session,
        terms=terms.model_copy(update={"dispatch": dispatch_terms}),
        effective_from=utcnow(),
        proposal_id=None,
    )
    await session.commit()


async def test_under_a_credit_bound_a_fresh_near_driver_beats_a_long_idle_far_one(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    await _dispatch_terms(session, fairness_credit_max_s=60)
    founding = load_founding_terms().dispatch
    assert founding.fairness_credit_max_s == 400  # the founding agreement's bound
    fresh = await make_driver(client, admin_headers, name="Just came on, 300 m")
    idle = await make_driver(client, admin_headers, name="Waited 59 min, 3 km")
    await place_driver(app, fresh.id, north(300))
    await place_driver(app, idle.id, north(3000))
    await _waiting_since(session, idle, minutes=59)
    await _waiting_since(session, fresh, minutes=0)
    rider = await make_rider(client, "First")
    trip = await request_trip(client, rider)
    [offer] = (await app.state.matcher.run_batch()).offers
    assert offer.driver_id == fresh.id
    assert offer.cost == costs.pickup_eta_s(300)  # no credit for a driver who just came on
    cancelled = await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)
    assert cancelled.status_code == 200

    # An equally near driver who waited longer wins within the bound, for its full value.
    other = await make_driver(client, admin_headers, name="Waited 30 min, 300 m")
    await place_driver(app, other.id, {"lat": north(300)["lat"], "lon": DOWNTOWN["lon"] + 1e-5})
    await _waiting_since(session, other, minutes=30)
    await _waiting_since(session, fresh, minutes=0)
    await request_trip(client, await make_rider(client, "Second"))
    [offer] = (await app.state.matcher.run_batch()).offers
    assert offer.driver_id == other.id
    credit = min(float(founding.fairness_weight) * offer.idle_s, 60)
    assert offer.cost == round(offer.pickup_eta_s - credit)


async def test_time_since_the_last_trip_counts_from_its_end(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    driver = await make_driver(client, admin_headers)
    rider = await make_rider(client)
    await place_driver(app, driver.id, north(100))
    await _waiting_since(session, driver, minutes=90)
    # A completed trip that ended 14 minutes ago (after they came on duty).
    trip = await request_trip(client, rider)
    offer = (await app.state.matcher.run_batch()).offers[0]
    path = f"/v1/trips/{trip['id']}"
    assert (
        await client.post(f"/v1/offers/{offer.id}/accept", headers=driver.headers)
    ).status_code == 200
    for step in ("arrived", "start", "complete"):
        assert (await client.post(f"{path}/{step}", headers=driver.headers)).status_code == 200
    await session.execute(
        text("UPDATE trip SET ended_at = now() - interval '14 minutes' WHERE id = :id"),
        {"id": uuid.UUID(trip["id"])},
    )
    await session.commit()
    await request_trip(client, rider)
    [next_offer] = (await app.state.matcher.run_batch()).offers
    assert 14 * 60 <= next_offer.idle_s <= 14 * 60 + 5
    assert next_offer.why == "under 100 m away, under a minute; 14 min since your last trip"


async def test_several_requests_are_solved_together(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    # Two requests, two drivers; greedily giving the first request its nearest driver would
    # strand the second request (only that driver is within reach of it).
    west = {"lat": 45.5017, "lon": -73.6100}
    between = {"lat": 45.5017, "lon": -73.5900}
    a = await make_driver(client, admin_headers, name="Between")
    b = await make_driver(client, admin_headers, name="East")
    await place_driver(app, a.id, between)
    await place_driver(app, b.id, {"lat": 45.5017, "lon": -73.5650})
    first = await request_trip(client, await make_rider(client, "Downtown"), pickup=DOWNTOWN)
    second = await request_trip(client, await make_rider(client, "West"), pickup=west)
    report = await app.state.matcher.run_batch()
    pairs = {(o.trip_id, o.driver_id) for o in report.offers}
    assert pairs == {(uuid.UUID(first["id"]), b.id), (uuid.UUID(second["id"]), a.id)}


async def test_offers_from_a_dead_worker_expire_and_the_trip_returns_to_matching(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], settings: object
) -> None:
    # A worker (its own app) makes an offer and dies before anyone answers.
    from server.app import create_app
    from tests.builders import live_server

    rider = await make_rider(client)
    first = await make_driver(client, admin_headers, name="First")
    second = await make_driver(client, admin_headers, name="Second")
    trip = await request_trip(client, rider)
    await place_driver(app, first.id, north(100))
    doomed = create_app(app.state.settings)
    async with live_server(doomed):
        [offer] = (await doomed.state.matcher.run_batch()).offers
    assert offer.driver_id == first.id
    # The surviving worker's batches expire it in time and the trip goes back to matching at
    # once. The offer never reached a socket: it ends `undelivered`, and its driver, still
    # present and nearest, is offered the trip again (nothing is held against them).
    await place_driver(app, second.id, north(400))
    assert (await app.state.matcher.run_batch()).offers == []  # not yet expired
    report = await app.state.matcher.run_batch(now=utcnow() + timedelta(seconds=16))
    assert report.expired_offers == 1
    assert [(o.trip_id, o.driver_id) for o in report.offers] == [(uuid.UUID(trip["id"]), first.id)]
    async with app.state.sessionmaker() as session:
        lapsed = await session.get(Offer, offer.id)
        assert lapsed is not None and lapsed.status is OfferStatus.undelivered


async def test_one_matcher_leads_a_region_at_a_time(app: FastAPI) -> None:
    def matcher() -> Matcher:
        return Matcher(
            engine=app.state.engine,
            sessionmaker=app.state.sessionmaker,
            redis=app.state.redis,
            settings=app.state.settings,
        )

    first, second = matcher(), matcher()
    first_task = asyncio.create_task(first.run())
    try:
        await until(lambda: first.leading)
        second_task = asyncio.create_task(second.run())
        await until(lambda: second.leadership_tries >= 1)  # it asked, and was refused
        assert first.leading and not second.leading and second.batches == 0
        # The leader stops (a restart, a dead worker): the lock is released and the other leads.
        first_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first_task
        assert not first.leading
        await until(lambda: second.leading, timeout_s=10)
    finally:
        for task in (first_task, locals().get("second_task")):
            if isinstance(task, asyncio.Task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    # The lock is free again once both are gone.
    async with app.state.engine.connect() as connection:
        key = region_lock_key(app.state.settings.matcher_region)
        assert await connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
        await connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


async def test_the_matcher_ignores_other_regions_and_trips_past_their_deadline(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    search_side: str,
) -> None:
    driver = await make_driver(client, admin_headers)
    await place_driver(app, driver.id, north(100))
    trip = await request_trip(client, await make_rider(client))
    await session.execute(
        text("UPDATE trip SET region = 'laval' WHERE id = :id"), {"id": uuid.UUID(trip["id"])}
    )
    await session.commit()
    assert (await app.state.matcher.run_batch()).requests == 0
    row = await session.get(Trip, uuid.UUID(trip["id"]))
    assert row is not None and row.status is TripStatus.requested


async def test_no_agreement_in_force_matches_nothing_and_says_so(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    driver = await make_driver(client, admin_headers)
    await place_driver(app, driver.id, north(100))
    await request_trip(client, await make_rider(client))
    # Before the founding agreement took effect nothing can be priced: a state, not a fault.
    before = FOUNDING_EFFECTIVE_FROM - timedelta(days=1)
    with caplog.at_level(logging.WARNING, logger="coop.matcher"):
        report = await app.state.matcher.run_batch(now=before)
    assert report.offers == [] and report.interval_ms is None
    [record] = [r for r in caplog.records if r.name == "coop.matcher"]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage() == "no agreement in force: nothing is matched"


async def test_a_batch_that_fails_is_an_error_with_its_traceback(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    # A fault (here a programming error: a time without its zone, which the agreement lookup
    # refuses) is not mistaken for "no agreement in force": run_batch raises it, and the
    # leader's loop logs it as an error with its traceback, then carries on with the next batch.
    naive = utcnow().replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        await app.state.matcher.run_batch(now=naive)

    class Failing(Matcher):
        async def run_batch(
            self, *, now: datetime | None = None, early: bool = False
        ) -> BatchReport:
            return await super().run_batch(now=naive, early=early)

    failing = Failing(
        engine=app.state.engine,
        sessionmaker=app.state.sessionmaker,
        redis=app.state.redis,
        settings=app.state.settings,
    )
    with caplog.at_level(logging.INFO, logger="coop.matcher"):
        task = asyncio.create_task(failing.run())
        try:
            await until(lambda: any("failed" in r.msg for r in caplog.records))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    failures = [r for r in caplog.records if r.name == "coop.matcher" and "failed" in r.msg]
    assert failures and all(r.levelno == logging.ERROR and r.exc_info for r in failures)
    assert not any("no agreement" in r.getMessage() for r in caplog.records)


async def _flood(session: AsyncSession, count: int, *, lat: float, lon: float) -> None:
    """`count` open requests of as many riders, older than anything the test requests next,
    spread over a square of about 3 km whose corner is (lat, lon): written in two statements,
    as thousands of scripted riders would have requested them."""
    await session.execute(
        text(
            """
            WITH riders AS (
                INSERT INTO rider (id, name, created_at)
                SELECT gen_random_uuid(), 'Flood ' || i, now() FROM generate_series(1, :n) i
                RETURNING id
            ), numbered AS (SELECT id, row_number() OVER () AS i FROM riders)
            INSERT INTO trip (id, rider_id, status, region, pickup, dropoff,
                              wheelchair_accessible, service_class, agreement_version, currency,
                              quote, requested_at, matching_deadline_at)
            SELECT gen_random_uuid(), id, 'requested', 'montreal',
                   ST_SetSRID(ST_MakePoint(:lon + (i % 60) * 0.0006, :lat + (i / 60) * 0.0004),
                              4326)::geography,
                   ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography,
                   false, 'standard', 1, 'CAD', '{"total": "10.00"}'::jsonb,
                   now() - interval '1 minute' + i * interval '1 millisecond',
                   now() + interval '5 minutes'
            FROM numbered
            """
        ),
        {"n": count, "lat": lat, "lon": lon},
    )
    await session.commit()


async def test_a_flood_of_requests_elsewhere_does_not_delay_a_request_with_a_driver_near(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    """2,100 open requests, all older, 7 to 10 km away (more than the 2,000 oldest the matcher
    once looked at): the new request 50 m from an available driver is offered to that driver in
    the first batch, and the drivers over there get requests of the flood."""
    await _flood(session, 2100, lat=45.555, lon=-73.66)
    near = await make_driver(client, admin_headers, name="Near")
    await place_driver(app, near.id, DOWNTOWN)
    over_there = [await make_driver(client, admin_headers, name=f"Far {i}") for i in range(2)]
    for i, driver in enumerate(over_there):
        await place_driver(app, driver.id, {"lat": 45.56 + i * 0.005, "lon": -73.65})
    trip = await request_trip(client, await make_rider(client), pickup=north(50))
    report = await app.state.matcher.run_batch()
    assert report.requests == 2101 and report.side == "drivers"
    offered = {offer.trip_id: offer.driver_id for offer in report.offers}
    assert offered[uuid.UUID(trip["id"])] == near.id
    assert len(offered) == 3  # and one request of the flood for each driver over there
    assert {d.id for d in over_there} <= set(offered.values())
