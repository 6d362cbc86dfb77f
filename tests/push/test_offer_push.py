"""Offers pushed to drivers whose socket is not open, end to end: the matcher's batch, the
sender, the loopback push service (which checks the VAPID signature and decrypts the payload as
a phone would), the push receipt and the accept over HTTP; and the sender's rules for a push
service that refuses, is gone, is busy or hangs."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

from fastapi import FastAPI
from httpx import AsyncClient

from coop.auth import Role
from coop.push.message import Urgency
from coop.push.sender import Push
from tests.builders import Account, make_driver, make_rider, offer_to, place_driver, request_trip
from tests.push.push_service import Phone, PushService


async def _driver_with_phone(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], pushes: PushService
) -> tuple[Account, Phone]:
    driver = await make_driver(client, admin_headers)
    phone = pushes.subscribe()
    response = await client.post("/v1/devices", json=phone.device(), headers=driver.headers)
    assert response.status_code == 201, response.text
    return driver, phone


def _metric(app: FastAPI, name: str) -> float:
    value = app.state.metrics.registry.get_sample_value(name)
    return float(value or 0.0)


async def test_an_offer_reaches_a_driver_without_a_socket_by_push_and_the_trip_proceeds(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], pushes: PushService
) -> None:
    driver, phone = await _driver_with_phone(app, client, admin_headers, pushes)
    delays_s = []
    for _ in range(5):
        rider = await make_rider(client)
        trip = await request_trip(client, rider)
        await place_driver(app, driver.id, {"lat": 45.5017, "lon": -73.5673})
        started = time.monotonic()
        offer_id = await offer_to(app, driver)
        pushed = await phone.next(timeout_s=2.0)
        delays_s.append(pushed.at - started)
        assert pushed.payload["kind"] == "offer"
        assert pushed.payload["offer_id"] == str(offer_id)
        assert pushed.payload["trip_id"] == trip["id"]
        assert pushed.urgency == "high" and pushed.topic == "offer"
        assert 0 < pushed.ttl_s <= 30
        # Opened from the push: the receipt counts it delivered.
        received = await client.post(f"/v1/offers/{offer_id}/received", headers=driver.headers)
        assert received.status_code == 200, received.text
        assert received.json()["status"] == "pending"
        assert received.json()["delivered_at"] is not None
        if len(delays_s) < 5:
            declined = await client.post(f"/v1/offers/{offer_id}/decline", headers=driver.headers)
            assert declined.status_code == 200
    accepted = await client.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "assigned"
    assert pushes.refused == []
    await app.state.push.idle()
    print(
        f"batch to push received: median {statistics.median(delays_s) * 1000:.1f} ms "
        f"over {len(delays_s)} ({', '.join(f'{d * 1000:.1f}' for d in delays_s)})"
    )
    assert statistics.median(delays_s) < 1.0
    assert _metric(app, "coop_push_sent_total") == 5
    assert _metric(app, "coop_push_delivery_seconds_count") == 5


async def test_a_receipt_is_the_offered_drivers_alone(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], pushes: PushService
) -> None:
    driver, phone = await _driver_with_phone(app, client, admin_headers, pushes)
    other = await make_driver(client, admin_headers)
    rider = await make_rider(client)
    await request_trip(client, rider)
    await place_driver(app, driver.id, {"lat": 45.5017, "lon": -73.5673})
    offer_id = await offer_to(app, driver)
    stranger = await client.post(f"/v1/offers/{offer_id}/received", headers=other.headers)
    assert stranger.status_code == 403
    assert stranger.json()["type"].endswith("not_your_offer")
    by_rider = await client.post(f"/v1/offers/{offer_id}/received", headers=rider.headers)
    assert by_rider.status_code == 403
    unknown = await client.post(f"/v1/offers/{uuid.uuid4()}/received", headers=driver.headers)
    assert unknown.status_code == 404
    offer = await app.state.sessionmaker().__aenter__()
    try:
        from dispatch.trips.models import Offer

        row = await offer.get(Offer, offer_id)
        assert row is not None and row.delivered_at is None  # the stranger counted for nothing
    finally:
        await offer.close()


async def test_an_unwanted_kind_is_not_pushed(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], pushes: PushService
) -> None:
    driver, phone = await _driver_with_phone(app, client, admin_headers, pushes)
    await client.put("/v1/push/preferences", json={"kinds": ["trip"]}, headers=driver.headers)
    rider = await make_rider(client)
    await request_trip(client, rider)
    await place_driver(app, driver.id, {"lat": 45.5017, "lon": -73.5673})
    await offer_to(app, driver)
    await app.state.push.idle()
    assert phone.received == [] and pushes.requests == 0


def _push(driver: Account, ttl_s: int = 30) -> Push:
    return Push(
        role=Role.driver,
        subject_id=driver.id,
        kind="offer",
        data={"kind": "offer", "offer_id": str(uuid.uuid4())},
        ttl_s=ttl_s,
        urgency=Urgency.high,
        topic="offer",
    )


async def test_a_gone_subscription_is_removed(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], pushes: PushService
) -> None:
    driver, phone = await _driver_with_phone(app, client, admin_headers, pushes)
    pushes.answers = [410]
    assert app.state.push.submit(_push(driver))
    await app.state.push.idle()
    assert (await client.get("/v1/devices", headers=driver.headers)).json() == []
    assert _metric(app, "coop_push_subscriptions_removed_total") == 1
    assert phone.received == []


async def test_a_busy_push_service_is_tried_again_within_the_ttl(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], pushes: PushService
) -> None:
    driver, phone = await _driver_with_phone(app, client, admin_headers, pushes)
    pushes.answers = [429, 503]
    app.state.push.submit(_push(driver))
    received = await phone.next(timeout_s=5.0)
    assert received.ttl_s < 30  # what is left of it, not the original
    assert pushes.requests == 3
    await app.state.push.idle()
    assert _metric(app, "coop_push_sent_total") == 1
    assert len((await client.get("/v1/devices", headers=driver.headers)).json()) == 1


async def test_a_push_the_service_keeps_refusing_is_dropped_when_its_ttl_runs_out(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], pushes: PushService
) -> None:
    driver, phone = await _driver_with_phone(app, client, admin_headers, pushes)
    pushes.answers = [500] * 100
    started = time.monotonic()
    app.state.push.submit(_push(driver, ttl_s=2))
    await app.state.push.idle()
    assert time.monotonic() - started < 3.0
    assert _metric(app, "coop_push_expired_total") == 1
    assert _metric(app, "coop_push_sent_total") == 0
    assert 1 < pushes.requests < 6  # retried with backoff, not hammered
    assert phone.received == []


async def test_a_hanging_push_service_never_holds_up_a_batch(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], pushes: PushService
) -> None:
    drivers = [await _driver_with_phone(app, client, admin_headers, pushes) for _ in range(3)]
    pushes.hang = True
    for index, (driver, _) in enumerate(drivers):
        rider = await make_rider(client)
        await request_trip(client, rider, pickup={"lat": 45.5017 + index * 0.02, "lon": -73.5673})
        await place_driver(app, driver.id, {"lat": 45.5017 + index * 0.02, "lon": -73.5673})
    started = time.monotonic()
    report = await app.state.matcher.run_batch()
    batch_s = time.monotonic() - started
    assert len(report.offers) == 3
    await asyncio.sleep(0.3)
    assert pushes.requests >= 1  # the pushes are out, hanging
    # A second batch runs while they hang: nothing waits for them.
    started = time.monotonic()
    await app.state.matcher.run_batch()
    assert time.monotonic() - started < 1.0
    assert batch_s < 2.0
    # The queue is bounded: beyond it a push is dropped at once, never waited for.
    sender = app.state.push
    dropped_before = _metric(app, "coop_push_dropped_total")
    while sender.submit(_push(drivers[0][0])):
        pass
    assert _metric(app, "coop_push_dropped_total") == dropped_before + 1


async def test_an_offer_no_socket_wrote_is_pushed_a_second_later_unless_received(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], pushes: PushService
) -> None:
    from sqlalchemy import select

    from dispatch.trips.models import Offer, Trip

    driver, phone = await _driver_with_phone(app, client, admin_headers, pushes)
    rider = await make_rider(client)
    await request_trip(client, rider)
    await place_driver(app, driver.id, {"lat": 45.5017, "lon": -73.5673})
    offer_id = await offer_to(app, driver)
    await phone.next(timeout_s=2.0)  # no socket: pushed at once
    async with app.state.sessionmaker() as session:
        offer = await session.scalar(select(Offer).where(Offer.id == offer_id))
        assert offer is not None
        trip = await session.scalar(select(Trip).where(Trip.id == offer.trip_id))
        assert trip is not None
    pushes_of = app.state.offer_pushes
    # As if a socket had taken the frame (a worker subscribed) but never written it.
    started = time.monotonic()
    pushes_of.offered([(offer, trip)], set())
    again = await phone.next(timeout_s=3.0)
    assert again.payload["offer_id"] == str(offer_id)
    assert 0.9 < again.at - started < 2.0
    assert pushes_of.pushed_after_wait == 1
    # Once received (or written by a socket), it is not pushed again.
    received = await client.post(f"/v1/offers/{offer_id}/received", headers=driver.headers)
    assert received.status_code == 200
    pushes_of.offered([(offer, trip)], set())
    await asyncio.sleep(1.5)
    await app.state.push.idle()
    assert len(phone.received) == 2 and pushes_of.pushed_after_wait == 1


async def test_the_most_urgent_push_leaves_the_queue_first(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], pushes: PushService
) -> None:
    from coop.push.sender import PushSender

    driver, phone = await _driver_with_phone(app, client, admin_headers, pushes)
    sender = PushSender(
        app.state.sessionmaker,
        app.state.vapid,
        queue_size=10,
        concurrency=1,
        tasks=app.state.tasks,
    )
    try:
        for index in range(3):
            notice = Push(
                role=Role.driver,
                subject_id=driver.id,
                kind="vote",
                data={"kind": "vote", "n": index},
                ttl_s=60,
            )
            assert sender.submit(notice)
        assert sender.submit(_push(driver))
        sender.start()
        for _ in range(4):
            await phone.next(timeout_s=3.0)
        assert [pushed.payload["kind"] for pushed in phone.received] == [
            "offer",
            "vote",
            "vote",
            "vote",
        ]
        assert [pushed.payload.get("n") for pushed in phone.received[1:]] == [0, 1, 2]
    finally:
        await sender.stop()
