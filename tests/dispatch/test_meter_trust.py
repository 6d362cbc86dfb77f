"""The meter believes only possible moves, and a fare never runs away from its quote.

The attack of issue "cheat the meter": a driver who accepted, arrived and started sent 400
location frames alternating between two points 15 km apart for 10 s and completed an 11-second
trip at thousands of dollars. Over real sockets against the real service it now gets error
frames, the count on the trip, and a sane fare.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.fares import cap_to_quote, price_trip
from bargaining.terms import load_founding_terms
from dispatch.locations.ingest import REPORT_BURST
from dispatch.locations.plausibility import Fix, Track, Verdict
from dispatch.trips import meter
from tests.builders import (
    DOWNTOWN,
    Collector,
    accepted_over_socket,
    go_online,
    make_driver,
    make_rider,
    socket,
)

SOUTH = (45.45, -73.60)
NORTH = (45.58, -73.55)
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LIMIT_MPS = 130 / 3.6


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- the pure parts ----------------------------------------------------------------------------


def test_a_jump_is_not_believed_and_the_next_true_position_is() -> None:
    track = Track()
    assert track.judge(Fix(45.50, -73.57, at(0)), max_speed_mps=LIMIT_MPS) is Verdict.anchored
    # 15 km in one second: no.
    assert track.judge(Fix(*NORTH, at(1)), max_speed_mps=LIMIT_MPS) is Verdict.implausible
    # 100 m in 10 s from the last believed position: yes.
    assert track.judge(Fix(45.5009, -73.57, at(10)), max_speed_mps=LIMIT_MPS) is Verdict.moved
    # A few metres of GPS jitter a tenth of a second later is believed (the allowance).
    assert track.judge(Fix(45.50095, -73.57, at(10.1)), max_speed_mps=LIMIT_MPS) is Verdict.moved


def test_positions_that_agree_for_ten_seconds_become_the_new_start() -> None:
    # A first fix 5 km off must not lock the driver out for ever.
    track = Track(Fix(45.55, -73.57, at(0)))
    truth = [Fix(45.50 + i * 0.00005, -73.57, at(1 + i)) for i in range(12)]
    verdicts = [track.judge(fix, max_speed_mps=LIMIT_MPS) for fix in truth]
    assert verdicts[:10] == [Verdict.implausible] * 10
    assert verdicts[10] is Verdict.anchored  # 10 s of agreeing reports
    assert verdicts[11] is Verdict.moved


def test_alternating_far_points_are_never_metered() -> None:
    points = [meter.TrailPoint(45.5017, -73.5673, at(0), segment_start=True)]
    points += [
        meter.TrailPoint(*(SOUTH if i % 2 else NORTH), at(0.1 * (i + 1))) for i in range(100)
    ]
    reading = meter.read(points, max_speed_kmh=130, duration_s=11)
    assert reading.distance_m == 0
    assert reading.implausible == 100


def test_a_new_start_is_not_metered_from_the_point_before_it() -> None:
    points = [
        meter.TrailPoint(45.50, -73.57, at(0), segment_start=True),
        meter.TrailPoint(45.501, -73.57, at(10)),  # 111 m
        meter.TrailPoint(45.60, -73.57, at(11), segment_start=True),  # re-anchored far away
        meter.TrailPoint(45.601, -73.57, at(21)),  # 111 m
    ]
    reading = meter.read(points, max_speed_kmh=130, duration_s=30)
    assert 220 <= reading.distance_m <= 225 and reading.implausible == 0


def test_the_distance_never_exceeds_what_the_duration_allows() -> None:
    # 40 m a second for 10 s: each step and the whole way within the allowances (10 s at
    # 130 km/h is 361 m, plus 1 s and 25 m: 422 m), 400 m in all, but the trip lasted 10 s.
    points = [meter.TrailPoint(45.50 + i * 40 / 111_195, -73.57, at(i)) for i in range(11)]
    reading = meter.read(points, max_speed_kmh=130, duration_s=10)
    assert reading.implausible == 0 and reading.trail_distance_m == 400
    assert reading.distance_m == reading.distance_cap_m == 361
    assert reading.distance_capped


def test_a_fare_far_above_its_quote_is_capped_and_the_split_still_adds_up() -> None:
    terms = load_founding_terms()
    metered = price_trip(
        terms, agreement_version=1, service_class="standard", distance_m=5_973_000, duration_s=11
    )
    capped = cap_to_quote(terms, metered, service_class="standard", quote_total=Decimal("9.06"))
    assert capped.capped and capped.metered_total == metered.total
    assert capped.total == Decimal("13.59")  # 9.06 x 1.5
    assert capped.driver_earnings + capped.coop_commission == capped.total
    assert capped.to_wire()["metered_total"] == f"{metered.total:.2f}"
    honest = price_trip(
        terms, agreement_version=1, service_class="standard", distance_m=3300, duration_s=600
    )
    assert cap_to_quote(terms, honest, service_class="standard", quote_total=Decimal("9.06")) == (
        honest
    )


# --- over the real protocol -------------------------------------------------------------------


async def test_the_teleporting_meter_attack_gets_errors_and_a_sane_fare(
    served_app: tuple[FastAPI, str], admin_headers: dict[str, str], session: AsyncSession
) -> None:
    app, base_url = served_app
    async with AsyncClient(base_url=base_url) as client:
        rider = await make_rider(client)
        driver = await make_driver(client, admin_headers)
        async with socket(base_url, "/v1/ws/driver", driver.token) as driver_socket:
            trip = await accepted_over_socket(
                app, client, driver_socket, rider, driver, at=DOWNTOWN
            )
            for step in ("arrived", "start"):
                response = await client.post(
                    f"/v1/trips/{trip['id']}/{step}", headers=driver.headers
                )
                assert response.status_code == 200, response.text
            collector = Collector(driver_socket)
            try:
                # The attack: 400 frames alternating between two points 15 km apart, ~10 s.
                loop = asyncio.get_running_loop()
                began = loop.time()
                for i in range(400):
                    lat, lon = SOUTH if i % 2 == 0 else NORTH
                    await driver_socket.send({"type": "location", "lat": lat, "lon": lon})
                    # paced by the clock, not by sleeps that add up
                    await asyncio.sleep(max(0.0, began + 0.025 * (i + 1) - loop.time()))
                # The connection is kept: a ping is still answered.
                await driver_socket.send({"type": "ping"})
                await collector.wait_for("pong")
            finally:
                await collector.stop()
            codes = collector.codes()
            assert codes.count("rate_limited") >= 250  # 40 a second sent, 10 a second let in
            assert "implausible_position" in codes
            assert set(codes) <= {"rate_limited", "implausible_position"}
            done = await client.post(f"/v1/trips/{trip['id']}/complete", headers=driver.headers)
            assert done.status_code == 200, done.text
    completed = done.json()
    fare = completed["fare"]
    quote_total = Decimal(completed["quote"]["total"])
    assert Decimal(fare["total"]) <= quote_total * Decimal("1.5")
    # Nothing metered: no believable move was reported after the start.
    assert fare["distance_m"] <= fare["duration_s"] * LIMIT_MPS
    assert fare["distance_m"] == 0
    assert completed["implausible_positions"] == codes.count("implausible_position")
    # The rider's copy says the same.
    async with AsyncClient(base_url=base_url) as client:
        mine = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert mine["implausible_positions"] == completed["implausible_positions"] > 0
    assert mine["fare"] == fare and mine["fare_capped"] is False


async def test_a_long_trip_is_capped_at_its_quote_and_the_rider_sees_why(
    served_app: tuple[FastAPI, str], admin_headers: dict[str, str], session: AsyncSession
) -> None:
    app, base_url = served_app
    async with AsyncClient(base_url=base_url) as client:
        rider = await make_rider(client)
        driver = await make_driver(client, admin_headers)
        async with socket(base_url, "/v1/ws/driver", driver.token) as driver_socket:
            trip = await accepted_over_socket(
                app, client, driver_socket, rider, driver, at=DOWNTOWN
            )
            for step in ("arrived", "start"):
                response = await client.post(
                    f"/v1/trips/{trip['id']}/{step}", headers=driver.headers
                )
                assert response.status_code == 200, response.text
            # Two hours under way (a jam, or a meter left running): far above the quote.
            await session.execute(
                text("UPDATE trip SET started_at = started_at - interval '2 hours' WHERE id = :id"),
                {"id": trip["id"]},
            )
            await session.commit()
            done = await client.post(f"/v1/trips/{trip['id']}/complete", headers=driver.headers)
            assert done.status_code == 200, done.text
            frame = await driver_socket.trip("completed")
        receipt = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
        export = (await client.get("/v1/riders/me/export", headers=rider.headers)).json()
    quote_total = Decimal(receipt["quote"]["total"])
    fare = receipt["fare"]
    assert receipt["fare_capped"] is True and frame["fare_capped"] is True
    assert Decimal(fare["total"]) == (quote_total * Decimal("1.5")).quantize(Decimal("0.01"))
    assert Decimal(fare["metered_total"]) > Decimal(fare["total"])
    assert Decimal(fare["driver_earnings"]) + Decimal(fare["coop_commission"]) == Decimal(
        fare["total"]
    )
    assert "max_over_quote_percent" in receipt["fare_cap_reason"]
    assert fare["metered_total"] in receipt["fare_cap_reason"]
    exported = next(t for t in export["trips_requested"] if t["id"] == trip["id"])
    assert exported["fare_capped"] is True and exported["fare_cap_reason"]


async def test_frames_faster_than_one_per_100_ms_are_dropped_not_buffered(
    served_app: tuple[FastAPI, str], admin_headers: dict[str, str]
) -> None:
    app, base_url = served_app
    async with AsyncClient(base_url=base_url) as client:
        driver = await make_driver(client, admin_headers)
    async with socket(base_url, "/v1/ws/driver", driver.token) as driver_socket:
        before = app.state.locations.reports_received
        sent = 3 * REPORT_BURST
        for n in range(sent):  # at once: a burst is let in, not three
            await driver_socket.send(
                {"type": "location", "lat": DOWNTOWN["lat"] + n * 1e-6, "lon": DOWNTOWN["lon"]}
            )
        error = await driver_socket.next("error")
        assert error["code"] == "rate_limited"
        # The burst was taken in, the rest dropped; the socket still answers.
        taken = app.state.locations.reports_received - before
        assert REPORT_BURST <= taken < 2 * REPORT_BURST
        await driver_socket.send({"type": "ping"})
        await driver_socket.next("pong")


async def test_an_implausible_position_neither_moves_the_driver_nor_closes_the_socket(
    served_app: tuple[FastAPI, str], admin_headers: dict[str, str]
) -> None:
    app, base_url = served_app
    async with AsyncClient(base_url=base_url) as client:
        driver = await make_driver(client, admin_headers)
    async with socket(base_url, "/v1/ws/driver", driver.token) as driver_socket:
        await go_online(driver_socket, DOWNTOWN)
        await app.state.locations.flush()
        await asyncio.sleep(0.11)  # the rate limit, not an event: one report per 100 ms
        await driver_socket.send({"type": "location", "lat": NORTH[0], "lon": NORTH[1]})
        error = await driver_socket.next("error")
        assert error["code"] == "implausible_position"
        assert "130 km/h" in error["message"]
        await app.state.locations.flush()
        async with app.state.sessionmaker() as session:
            row = (
                await session.execute(
                    text(
                        "SELECT ST_Y(position::geometry) FROM location_driver_position "
                        "WHERE driver_id = :id"
                    ),
                    {"id": driver.id},
                )
            ).one()
        assert row[0] == pytest.approx(DOWNTOWN["lat"])
        await driver_socket.send({"type": "ping"})
        await driver_socket.next("pong")
