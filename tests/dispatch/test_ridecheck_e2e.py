"""The ride check end to end over the real protocol: a driver's positions over the socket, the
ingest's flush, the sweep, `safety_check` frames to both parties, their answers, the escalation
of a check nobody answered, a stranger's answer refused, and the question again on reconnect.
The app's one clock is moved forward instead of waiting minutes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coop.db import utcnow
from coop.settings import Settings
from coop.state import state_of
from dispatch.realtime import ridecheck_socket
from dispatch.realtime.state import DispatchState
from dispatch.safety.models import SafetyAlert
from dispatch.safety.ridecheck_models import RideCheck, RideWatch
from server.app import create_app
from tests.builders import (
    DOWNTOWN,
    Account,
    SocketClient,
    go_online,
    live_server,
    make_driver,
    make_rider,
    offer_to,
    request_trip,
    socket,
)


@dataclass
class Ride:
    app: FastAPI
    base_url: str
    http: AsyncClient
    rider: Account
    driver: Account
    rider_ws: SocketClient
    driver_ws: SocketClient
    trip_id: str
    advance: Callable[[float], None]

    async def sweep(self) -> Any:
        return await ridecheck_socket.sweep(state_of(self.app, DispatchState))

    async def report(self, position: dict[str, float]) -> None:
        """A position over the socket, read by the server (the pong after it says so), flushed."""
        await self.driver_ws.send({"type": "location", **position})
        await self.driver_ws.send({"type": "ping"})
        await self.driver_ws.next("pong")
        await self.app.state.locations.flush()


@pytest_asyncio.fixture
async def ride(settings: Settings, admin_headers: dict[str, str]) -> AsyncIterator[Ride]:
    """A rider and a driver on sockets, the driver arrived at the pickup: the app's clock
    stands still until the test moves it."""
    app = create_app(settings)
    async with AsyncExitStack() as stack:
        base_url = await stack.enter_async_context(live_server(app))
        http = await stack.enter_async_context(AsyncClient(base_url=base_url))
        now = [utcnow()]
        app.state.clock = lambda: now[0]

        def advance(seconds: float) -> None:
            now[0] += timedelta(seconds=seconds)

        rider = await make_rider(http)
        driver = await make_driver(http, admin_headers)
        rider_ws = await stack.enter_async_context(socket(base_url, "/v1/ws/rider", rider.token))
        driver_ws = await stack.enter_async_context(socket(base_url, "/v1/ws/driver", driver.token))
        await go_online(driver_ws, DOWNTOWN)
        advance(1)  # the offer after the driver's first (anchoring) position
        trip = await request_trip(http, rider, pickup=DOWNTOWN)
        await app.state.locations.flush()
        offer_id = await offer_to(app, driver)
        accepted = await http.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
        assert accepted.status_code == 200, accepted.text
        arrived = await http.post(f"/v1/trips/{trip['id']}/arrived", headers=driver.headers)
        assert arrived.status_code == 200, arrived.text
        yield Ride(app, base_url, http, rider, driver, rider_ws, driver_ws, trip["id"], advance)


async def _start(ride: Ride) -> None:
    started = await ride.http.post(f"/v1/trips/{ride.trip_id}/start", headers=ride.driver.headers)
    assert started.status_code == 200, started.text


async def _checks(session: AsyncSession, trip_id: str) -> list[RideCheck]:
    found = await session.scalars(
        select(RideCheck)
        .where(RideCheck.trip_id == uuid.UUID(trip_id))
        .execution_options(populate_existing=True)
    )
    return list(found)


async def _alerts(session: AsyncSession, trip_id: str) -> list[SafetyAlert]:
    found = await session.scalars(
        select(SafetyAlert)
        .where(SafetyAlert.trip_id == uuid.UUID(trip_id))
        .execution_options(populate_existing=True)
    )
    return list(found)


async def test_a_car_stopped_mid_trip_asks_both_parties_and_help_escalates(
    ride: Ride, session: AsyncSession
) -> None:
    await ride.sweep()  # watched from the arrival
    await _start(ride)
    # Stopped at the pickup, mid-trip, reporting every minute: five minutes is not yet longer
    # than the founding stop_alert_s (300 s).
    for _ in range(6):
        await ride.report(DOWNTOWN)
        report = await ride.sweep()
        assert report.asked == []
        ride.advance(60)
    await ride.report(DOWNTOWN)  # 360 s stopped
    report = await ride.sweep()
    assert [check.detector for check in report.asked] == ["stopped"]
    asked_rider = await ride.rider_ws.next("safety_check")
    asked_driver = await ride.driver_ws.next("safety_check")
    assert asked_rider == asked_driver
    assert asked_rider["trip_id"] == ride.trip_id and asked_rider["detector"] == "stopped"
    assert "answered" not in asked_rider
    check_id = asked_rider["check_id"]
    # Still stopped a minute later: the same stop does not ask again.
    ride.advance(30)
    await ride.report(DOWNTOWN)
    assert (await ride.sweep()).asked == []

    # The driver answers ok; the rider asks for help: an SOS, escalated at once.
    await ride.driver_ws.send({"type": "safety_check_answer", "check_id": check_id, "answer": "ok"})
    confirmed = await ride.driver_ws.next("safety_check", answered="ok")
    assert confirmed["check_id"] == check_id
    await ride.rider_ws.send(
        {"type": "safety_check_answer", "check_id": check_id, "answer": "help"}
    )
    await ride.rider_ws.next("safety_check", answered="help")
    # The driver is not told of the rider's answer.
    await ride.driver_ws.nothing("safety_check")
    [check] = await _checks(session, ride.trip_id)
    assert (check.driver_answer, check.rider_answer) == ("ok", "help")
    assert (check.outcome, check.escalation) == ("help", "help")
    assert check.escalated_at is not None and check.detail["stopped_s"] > 300
    # In the operators' queue, raised by the rider who asked for help.
    [alert] = await _alerts(session, ride.trip_id)
    assert (alert.kind, alert.raised_by_role, alert.drill) == ("ride_check", "rider", False)
    assert alert.raised_by_id == check.rider_id and alert.resolved_at is None

    # A second answer is refused, the connection kept.
    await ride.rider_ws.send({"type": "safety_check_answer", "check_id": check_id, "answer": "ok"})
    error = await ride.rider_ws.next("error")
    assert error["code"] == "safety_check_answered"
    await ride.rider_ws.send({"type": "ping"})
    await ride.rider_ws.next("pong")


async def test_a_stranger_cannot_answer_and_bad_answers_are_refused(
    ride: Ride, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    await ride.sweep()
    ride.advance(245)  # arrived and not started for longer than not_started_alert_s (240 s)
    report = await ride.sweep()
    assert [check.detector for check in report.asked] == ["not_started"]
    check_id = (await ride.rider_ws.next("safety_check", detector="not_started"))["check_id"]
    await ride.driver_ws.next("safety_check", detector="not_started")

    stranger = await make_rider(ride.http, "Someone Else")
    other_driver = await make_driver(ride.http, admin_headers, name="Another Driver")
    for path, account in (("/v1/ws/rider", stranger), ("/v1/ws/driver", other_driver)):
        async with socket(ride.base_url, path, account.token) as ws:
            await ws.send({"type": "safety_check_answer", "check_id": check_id, "answer": "ok"})
            assert (await ws.next("error"))["code"] == "unknown_safety_check"
            await ws.send(
                {"type": "safety_check_answer", "check_id": str(uuid.uuid4()), "answer": "ok"}
            )
            assert (await ws.next("error"))["code"] == "unknown_safety_check"
            await ws.send({"type": "ping"})
            await ws.next("pong")  # the connection stays
    for bad in (
        {"type": "safety_check_answer", "check_id": check_id, "answer": "maybe"},
        {"type": "safety_check_answer", "check_id": "not-an-id", "answer": "ok"},
        {"type": "safety_check_answer", "answer": "ok"},
    ):
        await ride.rider_ws.send(bad)
        assert (await ride.rider_ws.next("error"))["code"] == "bad_message"
    [check] = await _checks(session, ride.trip_id)
    assert (check.rider_answer, check.driver_answer, check.outcome) == (None, None, "open")


async def test_no_answer_within_the_term_goes_to_the_operators(
    ride: Ride, session: AsyncSession
) -> None:
    await ride.sweep()
    ride.advance(241)
    await ride.sweep()
    asked = await ride.rider_ws.next("safety_check")
    # Only the rider answers: one `ok` is not both, so it still goes to a person.
    await ride.rider_ws.send(
        {"type": "safety_check_answer", "check_id": asked["check_id"], "answer": "ok"}
    )
    await ride.rider_ws.next("safety_check", answered="ok")
    ride.advance(119)
    assert (await ride.sweep()).escalated == []
    # A driver reconnecting meanwhile is asked again, the rider (who answered) is not.
    async with socket(ride.base_url, "/v1/ws/driver", ride.driver.token) as again:
        assert (await again.next("safety_check"))["check_id"] == asked["check_id"]
    async with socket(ride.base_url, "/v1/ws/rider", ride.rider.token) as again:
        await again.nothing("safety_check")
    ride.advance(2)  # past check_answer_s (120 s)
    report = await ride.sweep()
    assert [str(check.id) for check in report.escalated] == [asked["check_id"]]
    [check] = await _checks(session, ride.trip_id)
    assert (check.outcome, check.escalation) == ("unanswered", "unanswered")
    assert check.escalated_at == check.answer_by + timedelta(seconds=1)
    assert (await ride.sweep()).escalated == []  # once
    [alert] = await _alerts(session, ride.trip_id)  # one alert, for the rider
    assert (alert.kind, alert.raised_by_role) == ("ride_check", "rider")


async def test_both_ok_settles_and_a_trip_ended_far_away_asks(
    ride: Ride, session: AsyncSession
) -> None:
    await ride.sweep()
    ride.advance(241)
    await ride.sweep()
    check_id = (await ride.rider_ws.next("safety_check"))["check_id"]
    for ws in (ride.rider_ws, ride.driver_ws):
        await ws.send({"type": "safety_check_answer", "check_id": check_id, "answer": "ok"})
        await ws.next("safety_check", answered="ok")
    [check] = await _checks(session, ride.trip_id)
    assert check.outcome == "ok" and check.escalated_at is None
    ride.advance(240)
    assert (await ride.sweep()).escalated == []

    await _start(ride)
    # Driven 1 km towards the Plateau destination, then ended there: far from it.
    for step in range(1, 6):
        ride.advance(30)
        await ride.report({"lat": DOWNTOWN["lat"] + step * 200 / 111_195, "lon": DOWNTOWN["lon"]})
    await ride.sweep()
    done = await ride.http.post(f"/v1/trips/{ride.trip_id}/complete", headers=ride.driver.headers)
    assert done.status_code == 200, done.text
    ride.advance(5)  # the next sweep
    report = await ride.sweep()
    assert [c.detector for c in report.asked] == ["end_far"]
    assert report.asked[0].detail["from_destination_m"] > 500
    await ride.driver_ws.next("safety_check", detector="end_far")
    watch = await session.get(RideWatch, uuid.UUID(ride.trip_id), populate_existing=True)
    assert watch is not None and watch.closed


async def test_an_answer_racing_the_deadline_is_recorded_once(
    ride: Ride, session: AsyncSession
) -> None:
    await ride.sweep()
    ride.advance(241)
    await ride.sweep()
    check_id = (await ride.rider_ws.next("safety_check"))["check_id"]
    ride.advance(121)
    # The rider's `help` and the sweep's escalation at the same moment: both are recorded, and
    # the help (the stronger) is the outcome whichever lands first.
    await asyncio.gather(
        ride.rider_ws.send({"type": "safety_check_answer", "check_id": check_id, "answer": "help"}),
        ride.sweep(),
    )
    await ride.rider_ws.next("safety_check", answered="help")
    await ride.sweep()
    [check] = await _checks(session, ride.trip_id)
    assert (check.rider_answer, check.outcome, check.escalation) == ("help", "help", "help")
    assert isinstance(check.escalated_at, datetime)


async def test_another_worker_goes_on_where_the_last_left_and_two_never_ask_twice(
    ride: Ride, settings: Settings, session: AsyncSession
) -> None:
    """The detectors' state is in PostgreSQL: a second worker (or the same one restarted) carries
    on a stop the first began to count, and two workers sweeping at once ask once."""
    await ride.sweep()
    await _start(ride)
    for _ in range(4):  # 3 minutes stopped, seen by the first worker
        await ride.report(DOWNTOWN)
        assert (await ride.sweep()).asked == []
        ride.advance(60)
    other = create_app(settings)
    async with live_server(other):
        other.state.clock = ride.app.state.clock
        ride.advance(150)
        await ride.report(DOWNTOWN)  # 5.5 minutes stopped
        first, second = await asyncio.gather(
            ridecheck_socket.sweep(state_of(other, DispatchState)),
            ridecheck_socket.sweep(state_of(other, DispatchState)),
        )
        assert sorted(len(report.asked) for report in (first, second)) == [0, 1]
        # The new worker's check reaches the sockets the first worker holds.
        asked = await ride.rider_ws.next("safety_check", detector="stopped")
        assert asked["trip_id"] == ride.trip_id
        await ride.driver_ws.next("safety_check", detector="stopped")
    assert [c.detector for c in await _checks(session, ride.trip_id)] == ["stopped"]


async def test_a_sweep_goes_through_every_watched_trip_batch_by_batch(
    ride: Ride, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dispatch.safety import ridecheck_service
    from tests.builders import assigned_trip, north

    monkeypatch.setattr(ridecheck_service, "SWEEP_BATCH", 1)
    rider = await make_rider(ride.http, "Second Rider")
    driver = await make_driver(ride.http, admin_headers, name="Second Driver")
    ride.advance(1)
    trip = await assigned_trip(ride.app, ride.http, rider, driver, at=north(100))
    ride.advance(60)  # driving to the pickup: a report there
    ride.app.state.locations.report(
        driver.id,
        lat=DOWNTOWN["lat"],
        lon=DOWNTOWN["lon"],
        heading_deg=None,
        speed_mps=None,
        received_at=ride.app.state.clock(),
    )
    await ride.app.state.locations.flush()
    arrived = await ride.http.post(f"/v1/trips/{trip['id']}/arrived", headers=driver.headers)
    assert arrived.status_code == 200, arrived.text
    assert (await ride.sweep()).watched == 2
    ride.advance(245)
    report = await ride.sweep()
    assert report.watched == 2
    assert sorted(str(check.trip_id) for check in report.asked) == sorted(
        [ride.trip_id, trip["id"]]
    )


async def test_the_ride_checks_figures_are_on_metrics(ride: Ride) -> None:
    figures = ridecheck_socket.RideCheckCollector()
    state = state_of(ride.app, DispatchState)
    await ridecheck_socket.sweep(state, figures)
    ride.advance(245)
    await ridecheck_socket.sweep(state, figures)
    ride.advance(121)
    await ridecheck_socket.sweep(state, figures)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in figures.collect()
        for sample in family.samples
    }
    assert samples[("coop_ride_checks_asked_total", (("detector", "not_started"),))] == 1
    assert samples[("coop_ride_checks_asked_total", (("detector", "stopped"),))] == 0
    assert samples[("coop_ride_checks_unanswered_total", ())] == 1
    assert samples[("coop_ride_check_sweeps_total", ())] == 3
    assert samples[("coop_ride_check_watched_trips", ())] == 1
    # The app's own collector is on /metrics from the start.
    metrics = (await ride.http.get("/metrics")).text
    assert 'coop_ride_checks_asked_total{detector="away"} 0.0' in metrics
    assert "coop_ride_check_sweep_seconds" in metrics
