"""Issue 23, finding 4: detours up to the cap.

Standing still and reporting points 60 m apart every 110 ms for 280 s metered 10 km, and the
fare was the quote + 50 % with `implausible_positions: 0`: the allowances for GPS jitter and
network timing (25 m, 1 s) were granted to every report, so reports 100 ms apart could imply
650 m/s. They now hold per stretch of time (`dispatch.locations.plausibility.WINDOW_S`).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.locations.plausibility import Fix, Track, Verdict
from dispatch.trips import meter, reviews
from tests.builders import (
    DOWNTOWN,
    Collector,
    accepted_over_socket,
    make_driver,
    make_rider,
    socket,
)

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LIMIT_MPS = 130 / 3.6
HOP_DEG = 60 / 111_195  # 60 m north


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def hops(count: int, every_s: float) -> list[Fix]:
    """Standing at DOWNTOWN, reporting a point 60 m north every other time."""
    return [
        Fix(
            DOWNTOWN["lat"] + (HOP_DEG if i % 2 else 0.0),
            DOWNTOWN["lon"],
            T0 + i * timedelta(seconds=every_s),
        )
        for i in range(count)
    ]


def test_hops_a_tenth_of_a_second_apart_do_not_each_earn_the_allowances() -> None:
    track = Track()
    verdicts = [track.judge(fix, max_speed_mps=LIMIT_MPS) for fix in hops(100, 0.11)]
    # One hop alone is within the allowances; ten seconds of them are 5 km.
    assert verdicts[1] is Verdict.moved
    assert verdicts.count(Verdict.implausible) > 40


def test_the_finding_s_280_seconds_are_counted_as_not_believed() -> None:
    fixes = hops(int(280 / 0.11), 0.11)
    points = [
        meter.TrailPoint(fix.lat, fix.lon, fix.at, segment_start=i == 0)
        for i, fix in enumerate(fixes)
    ]
    reading = meter.read(points, max_speed_kmh=130, duration_s=280)
    assert reading.implausible > len(points) // 3


def test_a_car_at_50_kmh_reporting_every_second_is_believed_all_the_way() -> None:
    track = Track()
    fixes = [
        # 13.9 m a second north, wandering 3 m east and back (a phone's jitter)
        Fix(45.50 + i * 13.9 / 111_195, -73.57 + (0.00004 if i % 3 else 0.0), at(i))
        for i in range(120)
    ]
    verdicts = [track.judge(fix, max_speed_mps=LIMIT_MPS) for fix in fixes]
    assert verdicts[1:] == [Verdict.moved] * 119


async def test_hopping_in_place_every_110_ms_is_counted_on_the_trip(
    served_app: tuple[FastAPI, str], admin_headers: dict[str, str]
) -> None:
    app, base_url = served_app
    async with AsyncClient(base_url=base_url) as client:
        rider = await make_rider(client)
        driver = await make_driver(client, admin_headers)
        async with socket(base_url, "/v1/ws/driver", driver.token) as driver_socket:
            trip = await accepted_over_socket(
                app, client, driver_socket, rider, driver, at=DOWNTOWN, pickup=DOWNTOWN
            )
            for step in ("arrived", "start"):
                path = f"/v1/trips/{trip['id']}/{step}"
                response = await client.post(path, headers=driver.headers)
                assert response.status_code == 200, response.text
            collector = Collector(driver_socket)
            try:
                # The attack, for 6 s: 60 m hops every 110 ms, standing still.
                loop = asyncio.get_running_loop()
                began = loop.time()
                for i in range(1, 56):
                    lat = DOWNTOWN["lat"] + (HOP_DEG if i % 2 else 0.0)
                    frame = {"type": "location", "lat": lat, "lon": DOWNTOWN["lon"]}
                    await driver_socket.send(frame)
                    await asyncio.sleep(max(0.0, began + 0.11 * i - loop.time()))
                await driver_socket.send({"type": "ping"})
                await collector.wait_for("pong")
            finally:
                await collector.stop()
            codes = collector.codes()
            await app.state.locations.flush()
            done = await client.post(f"/v1/trips/{trip['id']}/complete", headers=driver.headers)
            assert done.status_code == 200, done.text
    completed = done.json()
    assert codes.count("implausible_position") >= 15
    assert completed["implausible_positions"] == codes.count("implausible_position")
    assert completed["fare"]["distance_m"] <= completed["fare"]["duration_s"] * LIMIT_MPS


# --- fares that hit the cap, or go far past the quote's route, wait for a person -------------


def test_a_meter_far_past_the_quote_s_route_is_a_reason_to_review() -> None:
    honest = reviews.reason(capped=False, distance_m=3300, route_distance_m=3000, implausible=0)
    assert honest is None
    # Half again, but not a kilometre more: a short trip's one-way streets.
    short = reviews.reason(capped=False, distance_m=1600, route_distance_m=1000, implausible=0)
    assert short is None
    far = reviews.reason(capped=False, distance_m=10_111, route_distance_m=3000, implausible=9)
    assert far is not None
    assert "10111 m" in far and "3000 m" in far and "9 reported positions" in far
    capped = reviews.reason(capped=True, distance_m=3000, route_distance_m=3000, implausible=0)
    assert capped == "The fare hit the cap over its quote."


async def test_a_fare_that_hits_the_cap_goes_to_the_review_list_until_a_person_closes_it(
    served_app: tuple[FastAPI, str], admin_headers: dict[str, str], session: AsyncSession
) -> None:
    app, base_url = served_app
    async with AsyncClient(base_url=base_url) as client:
        rider = await make_rider(client)
        driver = await make_driver(client, admin_headers)
        async with socket(base_url, "/v1/ws/driver", driver.token) as driver_socket:
            trip = await accepted_over_socket(
                app, client, driver_socket, rider, driver, at=DOWNTOWN, pickup=DOWNTOWN
            )
            for step in ("arrived", "start"):
                path = f"/v1/trips/{trip['id']}/{step}"
                response = await client.post(path, headers=driver.headers)
                assert response.status_code == 200, response.text
            # Two hours under way: the fare hits the cap over the quote.
            await session.execute(
                text("UPDATE trip SET started_at = started_at - interval '2 hours' WHERE id = :id"),
                {"id": trip["id"]},
            )
            await session.commit()
            done = await client.post(f"/v1/trips/{trip['id']}/complete", headers=driver.headers)
            assert done.status_code == 200, done.text
            assert done.json()["fare_capped"] is True

        # Only an admin reads the list.
        for headers in (rider.headers, driver.headers):
            refused = await client.get("/v1/fare-reviews", headers=headers)
            assert refused.status_code == 403, refused.text
        listed = await client.get("/v1/fare-reviews?status=open", headers=admin_headers)
        assert listed.status_code == 200, listed.text
        mine = [review for review in listed.json() if review["trip_id"] == trip["id"]]
        assert len(mine) == 1
        review = mine[0]
        assert review["reason"].startswith("The fare hit the cap over its quote.")
        assert review["fare_capped"] is True and review["reviewed_at"] is None
        assert review["quote_total"] == done.json()["quote"]["total"]
        assert review["route_distance_m"] == done.json()["quote"]["distance_m"]

        path = f"/v1/fare-reviews/{trip['id']}/close"
        refused = await client.post(path, json={"note": "Jam on the bridge"}, headers=rider.headers)
        assert refused.status_code == 403, refused.text
        closed = await client.post(path, json={"note": "Jam on the bridge"}, headers=admin_headers)
        assert closed.status_code == 200, closed.text
        assert closed.json()["note"] == "Jam on the bridge" and closed.json()["reviewed_at"]
        again = await client.post(path, json={"note": "twice"}, headers=admin_headers)
        assert again.status_code == 409 and again.json()["type"] == "fare_review_closed"
        unknown = await client.post(
            f"/v1/fare-reviews/{uuid.uuid4()}/close", json={"note": "?"}, headers=admin_headers
        )
        assert unknown.status_code == 404 and unknown.json()["type"] == "fare_review_not_found"
        open_now = await client.get("/v1/fare-reviews?status=open", headers=admin_headers)
        assert trip["id"] not in {review["trip_id"] for review in open_now.json()}
        everything = await client.get("/v1/fare-reviews?status=all", headers=admin_headers)
        assert trip["id"] in {review["trip_id"] for review in everything.json()}
