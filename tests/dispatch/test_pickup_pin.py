"""The PIN at pickup (docs/safety.md, "The PIN at pickup") over the real protocol: the rider
alone sees it, `start` needs it, five wrong tries hand the decision to the rider's app, and the
four digits reach no log, audit entry, export or driver."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coop.audit import AuditEntry
from coop.settings import Settings
from dispatch.trips import pin as pins
from dispatch.trips.models import Trip
from tests.builders import (
    Account,
    assigned_trip,
    make_driver,
    make_rider,
    offer_to,
    place_driver,
    request_trip,
    serve,
    socket,
)

MONTREAL = "America/Toronto"  # the Québec profile's zone (coop/data/jurisdictions)


async def _rider(client: AsyncClient, pin_policy: str | None = "always") -> Account:
    rider = await make_rider(client)
    if pin_policy is not None:
        answer = await client.patch(
            "/v1/riders/me", json={"safety": {"pin": pin_policy}}, headers=rider.headers
        )
        assert answer.status_code == 200, answer.text
    return rider


async def _at_pickup(
    app: FastAPI, client: AsyncClient, rider: Account, driver: Account
) -> dict[str, Any]:
    """A trip of `rider` that `driver` accepted and arrived at: ready to start."""
    trip = await assigned_trip(app, client, rider, driver)
    arrived = await client.post(f"/v1/trips/{trip['id']}/arrived", headers=driver.headers)
    assert arrived.status_code == 200, arrived.text
    return trip


def _problem(answer: Response, status: int, type_: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["type"] == type_
    return body


def _wrong(pin: str) -> str:
    return f"{(int(pin) + 1) % 10_000:04d}"


async def test_the_rider_alone_sees_the_pin_and_the_ride_starts_with_it(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await _rider(client, "always")
    driver = await make_driver(client, admin_headers)
    trip = await _at_pickup(app, client, rider, driver)
    seen = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert re.fullmatch(r"[0-9]{4}", seen["pin"])
    assert seen["pin_required"] is True
    drivers = await client.get(f"/v1/trips/{trip['id']}", headers=driver.headers)
    assert drivers.json()["pin"] is None
    assert drivers.json()["pin_required"] is True
    assert f'"{seen["pin"]}"' not in drivers.text

    url = f"/v1/trips/{trip['id']}/start"
    body = _problem(await client.post(url, headers=driver.headers), 409, "pin_required")
    assert body["attempts_left"] == pins.MAX_WRONG_ATTEMPTS
    body = _problem(
        await client.post(url, json={"pin": _wrong(seen["pin"])}, headers=driver.headers),
        409,
        "wrong_pin",
    )
    assert body["attempts_left"] == pins.MAX_WRONG_ATTEMPTS - 1
    started = await client.post(url, json={"pin": seen["pin"]}, headers=driver.headers)
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "in_progress"
    assert started.json()["pin"] is None
    # Once aboard, the PIN has done its work: shown to nobody, and not kept.
    after = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert (after["pin"], after["pin_required"]) == (None, False)


async def test_a_pin_that_is_not_four_digits_is_refused_as_bad_input(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await _rider(client, "always")
    driver = await make_driver(client, admin_headers)
    trip = await _at_pickup(app, client, rider, driver)
    url = f"/v1/trips/{trip['id']}/start"
    for bad in ("12", "12345", "abcd", 1234, " 123"):
        answer = await client.post(url, json={"pin": bad}, headers=driver.headers)
        _problem(answer, 422, "validation_error")
    # Bad input is no try: all five are left.
    body = _problem(await client.post(url, headers=driver.headers), 409, "pin_required")
    assert body["attempts_left"] == pins.MAX_WRONG_ATTEMPTS


async def test_six_wrong_pins_lock_the_start_until_the_rider_confirms_their_car(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await _rider(client, "always")
    driver = await make_driver(client, admin_headers)
    trip = await _at_pickup(app, client, rider, driver)
    pin = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()["pin"]
    url = f"/v1/trips/{trip['id']}/start"
    wrong = {"pin": _wrong(pin)}
    for left in range(pins.MAX_WRONG_ATTEMPTS - 1, 0, -1):
        body = _problem(
            await client.post(url, json=wrong, headers=driver.headers), 409, "wrong_pin"
        )
        assert body["attempts_left"] == left
    locked = await client.post(url, json=wrong, headers=driver.headers)
    _problem(locked, 429, "pin_attempts_exceeded")
    assert int(locked.headers["retry-after"]) > 0
    # Locked: even the right PIN no longer starts the ride, nor does a sixth wrong one.
    _problem(
        await client.post(url, json=wrong, headers=driver.headers), 429, "pin_attempts_exceeded"
    )
    _problem(
        await client.post(url, json={"pin": pin}, headers=driver.headers),
        429,
        "pin_attempts_exceeded",
    )
    # Only the trip's rider confirms: not the driver, not another rider.
    confirm = f"/v1/trips/{trip['id']}/pin/confirm"
    _problem(await client.post(confirm, headers=driver.headers), 403, "forbidden")
    stranger = await make_rider(client, "Sam Stranger")
    _problem(await client.post(confirm, headers=stranger.headers), 403, "not_your_trip")
    confirmed = await client.post(confirm, headers=rider.headers)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["pin_required"] is False
    again = await client.post(confirm, headers=rider.headers)  # a double tap changes nothing
    assert again.status_code == 200, again.text
    started = await client.post(url, headers=driver.headers)
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "in_progress"
    # The trip under way has no PIN left to confirm.
    _problem(await client.post(confirm, headers=rider.headers), 409, "no_pin")


async def test_concurrent_wrong_pins_are_each_counted(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    """A driver's app (or someone else's) firing guesses at once gets no more than five."""
    rider = await _rider(client, "always")
    driver = await make_driver(client, admin_headers)
    trip = await _at_pickup(app, client, rider, driver)
    pin = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()["pin"]
    url = f"/v1/trips/{trip['id']}/start"
    guesses = [f"{(int(pin) + step) % 10_000:04d}" for step in range(1, 11)]
    answers = await asyncio.gather(
        *(client.post(url, json={"pin": guess}, headers=driver.headers) for guess in guesses)
    )
    kinds = sorted(answer.json()["type"] for answer in answers)
    assert kinds.count("wrong_pin") == pins.MAX_WRONG_ATTEMPTS - 1
    assert kinds.count("pin_attempts_exceeded") == len(guesses) - pins.MAX_WRONG_ATTEMPTS + 1
    still = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert still["status"] == "arrived"


async def test_the_pin_and_the_confirmation_race_to_one_start(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await _rider(client, "always")
    driver = await make_driver(client, admin_headers)
    trip = await _at_pickup(app, client, rider, driver)
    pin = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()["pin"]
    started, confirmed = await asyncio.gather(
        client.post(f"/v1/trips/{trip['id']}/start", json={"pin": pin}, headers=driver.headers),
        client.post(f"/v1/trips/{trip['id']}/pin/confirm", headers=rider.headers),
    )
    assert started.status_code == 200, started.text
    # Confirmed before the start, or refused after it: never a half-state.
    assert confirmed.status_code in (200, 409), confirmed.text
    if confirmed.status_code == 409:
        assert confirmed.json()["type"] == "no_pin"
    final = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert (final["status"], final["pin"], final["pin_required"]) == ("in_progress", None, False)


async def test_riders_who_never_chose_keep_the_founding_default_no_pin(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    """The founding agreement's safety.pin_default is `never`: an old client starts as before."""
    rider = await _rider(client, None)
    driver = await make_driver(client, admin_headers)
    trip = await _at_pickup(app, client, rider, driver)
    seen = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert (seen["pin"], seen["pin_required"]) == (None, False)
    _problem(
        await client.post(f"/v1/trips/{trip['id']}/pin/confirm", headers=rider.headers),
        409,
        "no_pin",
    )
    # A PIN sent where none was asked for changes nothing.
    started = await client.post(
        f"/v1/trips/{trip['id']}/start", json={"pin": "1234"}, headers=driver.headers
    )
    assert started.status_code == 200, started.text


async def test_a_rider_who_says_never_gets_no_pin(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await _rider(client, "never")
    driver = await make_driver(client, admin_headers)
    trip = await _at_pickup(app, client, rider, driver)
    started = await client.post(f"/v1/trips/{trip['id']}/start", headers=driver.headers)
    assert started.status_code == 200, started.text


async def test_the_pin_reaches_the_riders_socket_and_never_the_drivers(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    async with serve(settings) as served:
        rider = await _rider(served.http, "always")
        driver = await make_driver(served.http, admin_headers)
        async with (
            socket(served.base_url, "/v1/ws/rider", rider.token) as rider_ws,
            socket(served.base_url, "/v1/ws/driver", driver.token) as driver_ws,
        ):
            await request_trip(served.http, rider)
            await place_driver(served.app, driver.id, {"lat": 45.5017, "lon": -73.5673})
            offer_id = await offer_to(served.app, driver)
            accepted = await served.http.post(
                f"/v1/offers/{offer_id}/accept", headers=driver.headers
            )
            assert accepted.status_code == 200, accepted.text
            riders = await rider_ws.trip("assigned")
            drivers = await driver_ws.trip("assigned")
            assert re.fullmatch(r"[0-9]{4}", riders["pin"])
            assert riders["pin_required"] is True
            assert drivers["pin"] is None and drivers["pin_required"] is True
            assert all(riders["pin"] not in str(frame) for frame in driver_ws.seen)
            assert riders["pin"] not in accepted.text
            # The rider's word in the app reaches the driver as `pin_required: false`.
            trip_id = riders["id"]
            confirmed = await served.http.post(
                f"/v1/trips/{trip_id}/pin/confirm", headers=rider.headers
            )
            assert confirmed.status_code == 200, confirmed.text
            update = await driver_ws.next("trip")
            assert update["trip"]["pin_required"] is False
            assert update["trip"]["pin"] is None


async def test_the_pin_is_in_no_log_audit_entry_or_export(
    app: FastAPI,
    client: AsyncClient,
    session: AsyncSession,
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A known PIN, so the search below cannot confuse it with digits of a time or an id.
    monkeypatch.setattr(pins, "new_pin", lambda: "7391")
    caplog.set_level(logging.DEBUG)
    rider = await _rider(client, "always")
    driver = await make_driver(client, admin_headers)
    trip = await _at_pickup(app, client, rider, driver)
    url = f"/v1/trips/{trip['id']}/start"
    for _ in range(pins.MAX_WRONG_ATTEMPTS):
        await client.post(url, json={"pin": "1111"}, headers=driver.headers)
    seen = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert seen["pin"] == "7391"
    await client.post(f"/v1/trips/{trip['id']}/pin/confirm", headers=rider.headers)
    assert (await client.post(url, headers=driver.headers)).status_code == 200

    the_pin = re.compile(r"(?<![0-9A-Za-z])7391(?![0-9A-Za-z])")
    logged = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.__dict__!r}" for record in caplog.records
    )
    assert caplog.records  # the requests were logged, just not the PIN
    assert not the_pin.search(logged)
    entries = (await session.scalars(select(AuditEntry))).all()
    assert not the_pin.search(repr([(e.kind, e.subject, e.content) for e in entries]))
    for who in (rider, driver):
        path = "/v1/riders/me/export" if who is rider else "/v1/drivers/me/export"
        export = await client.get(path, headers=who.headers)
        assert export.status_code == 200, export.text
        assert str(trip["id"]) in export.text
        assert not the_pin.search(export.text)


async def test_a_night_policy_asks_for_a_pin_only_at_night(
    app: FastAPI, client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    """At assignment, by the agreement's night (founding 22:00 to 06:00) in Montréal's zone."""
    rider = await _rider(client, "never")
    driver = await make_driver(client, admin_headers)
    trip = await assigned_trip(app, client, rider, driver)
    answer = await client.patch(
        "/v1/riders/me", json={"safety": {"pin": "night"}}, headers=rider.headers
    )
    assert answer.status_code == 200, answer.text
    row = await session.get(Trip, uuid.UUID(trip["id"]))
    assert row is not None
    noon = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)  # 12:00 in Montréal (EDT)
    assert not await pins.issue(session=session, trip=row, time_zone=MONTREAL, now=noon)
    late = datetime(2026, 7, 2, 3, 30, tzinfo=UTC)  # 23:30 in Montréal
    assert await pins.issue(session=session, trip=row, time_zone=MONTREAL, now=late)
    await session.commit()
    seen = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert re.fullmatch(r"[0-9]{4}", seen["pin"])


@pytest.mark.parametrize(
    ("local", "night"),
    [
        ("21:59", False),
        ("22:00", True),
        ("23:59", True),
        ("00:00", True),
        ("05:59", True),
        ("06:00", False),
        ("12:00", False),
    ],
)
def test_the_night_window_runs_across_midnight_in_the_local_zone(local: str, night: bool) -> None:
    hour, minute = (int(part) for part in local.split(":"))
    moment = datetime(2027, 1, 15, hour, minute, tzinfo=ZoneInfo(MONTREAL)).astimezone(UTC)
    assert (
        pins.at_night(moment, time_zone=MONTREAL, night_starts="22:00", night_ends="06:00") is night
    )


def test_a_night_window_within_one_day_and_an_empty_one() -> None:
    morning = datetime(2027, 1, 15, 14, 0, tzinfo=UTC)  # 09:00 in Montréal
    assert pins.at_night(morning, time_zone=MONTREAL, night_starts="08:00", night_ends="10:00")
    assert not pins.at_night(morning, time_zone=MONTREAL, night_starts="10:00", night_ends="12:00")
    assert not pins.at_night(morning, time_zone=MONTREAL, night_starts="09:00", night_ends="09:00")


def test_a_pin_is_four_digits_and_policies_apply_as_named() -> None:
    drawn = {pins.new_pin() for _ in range(2000)}
    assert all(re.fullmatch(r"[0-9]{4}", pin) for pin in drawn)
    assert len(drawn) > 1000  # drawn, not fixed
    assert pins.applies("always", night=False) and pins.applies("always", night=True)
    assert pins.applies("night", night=True) and not pins.applies("night", night=False)
    assert not pins.applies("never", night=True)


async def test_the_pin_of_a_trip_that_ends_without_its_ride_is_erased_by_the_sweep(
    app: FastAPI, client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    rider = await _rider(client, "always")
    driver = await make_driver(client, admin_headers)
    trip = await assigned_trip(app, client, rider, driver)
    trip_id = uuid.UUID(trip["id"])
    held = await session.scalar(select(pins.TripPin.pin).where(pins.TripPin.trip_id == trip_id))
    assert held is not None
    cancelled = await client.post(f"/v1/trips/{trip_id}/cancel", headers=rider.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["pin"] is None
    await app.state.matcher.run_batch()
    session.expire_all()
    row = await session.get(pins.TripPin, trip_id)
    assert row is not None and row.pin is None


async def test_another_driver_cannot_spend_the_trips_tries(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    """A stranger guessing PINs on someone else's trip is refused as not its driver, and the
    trip's own five tries stay whole."""
    rider = await _rider(client, "always")
    driver = await make_driver(client, admin_headers)
    stranger = await make_driver(client, admin_headers, name="Sam Stranger")
    trip = await _at_pickup(app, client, rider, driver)
    url = f"/v1/trips/{trip['id']}/start"
    for guess in range(pins.MAX_WRONG_ATTEMPTS + 1):
        answer = await client.post(url, json={"pin": f"{guess:04d}"}, headers=stranger.headers)
        _problem(answer, 403, "not_your_trip")
    body = _problem(await client.post(url, headers=driver.headers), 409, "pin_required")
    assert body["attempts_left"] == pins.MAX_WRONG_ATTEMPTS
