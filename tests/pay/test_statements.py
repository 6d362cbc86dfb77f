"""Earnings statements, their automatic close, receipts and the public pay report, end to end
over HTTP against the real database."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import date, timedelta
from decimal import Decimal

from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.audit import AuditEntry
from coop.db import utcnow
from coop.settings import Settings
from pay import closing
from pay.models import PayPeriod, PayStatement, PayStatementLine
from server.app import create_app
from tests.bargaining.conftest import Clock
from tests.builders import Account, make_driver, make_rider, request_trip
from tests.pay.helpers import completed_trip, fee_paid_trip, problem


async def test_trips_appear_on_the_open_statement_with_the_figures_of_their_fares(
    app: FastAPI, client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    other = await make_driver(client, admin_headers, name="Other")
    first = await completed_trip(app, client, session, rider, driver, engaged_s=1800)
    second = await completed_trip(app, client, session, rider, driver, engaged_s=900)
    fee = await fee_paid_trip(app, client, session, rider, driver)

    listing = await client.get("/v1/drivers/me/statements", headers=driver.headers)
    assert listing.status_code == 200, listing.text
    [current] = listing.json()
    assert current["status"] == "open" and current["closed_at"] is None
    assert date.fromisoformat(current["period_start"]).weekday() == 0
    assert current["timezone"] == "America/Toronto"
    assert (current["trips"], current["fares_total"], current["commission_total"]) == (
        2,
        "14.00",
        "1.12",
    )
    assert (current["earnings_total"], current["cancellation_fees_total"]) == ("12.88", "5.00")

    read = await client.get(
        f"/v1/drivers/me/statements/{current['period_start']}", headers=driver.headers
    )
    statement = read.json()
    assert {k: v for k, v in statement.items() if k != "lines"} == current
    lines = {line["trip_id"]: line for line in statement["lines"]}
    assert set(lines) == {first["id"], second["id"], fee["id"]}
    for trip in (first, second):
        line = lines[trip["id"]]
        assert line["kind"] == "trip" and not line["adjustment"]
        assert (line["fare_total"], line["commission"], line["driver_earnings"]) == (
            trip["fare"]["total"],
            trip["fare"]["coop_commission"],
            trip["fare"]["driver_earnings"],
        )
        assert line["agreement_version"] == trip["fare"]["agreement_version"]
        assert line["distance_m"] == trip["fare"]["distance_m"]
    assert lines[fee["id"]]["kind"] == "cancellation_fee"
    assert lines[fee["id"]]["cancellation_fee"] == "5.00"
    engaged = sum(line["engaged_seconds"] for line in statement["lines"])
    assert statement["engaged_seconds"] == engaged >= 1800 + 900 + 300
    # 24.00 an hour over about 50 engaged minutes is about 20: above 17.88 earned, topped up.
    floor = (Decimal(engaged) * Decimal("24.00") / 3600).quantize(Decimal("0.01"))
    assert statement["floor_due"] == str(floor)
    assert Decimal(statement["top_up"]) == max(Decimal(0), floor - Decimal("17.88"))
    assert Decimal(statement["pay_total"]) == Decimal("17.88") + Decimal(statement["top_up"])

    as_csv = await client.get(
        f"/v1/drivers/me/statements/{current['period_start']}?format=csv", headers=driver.headers
    )
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [row["row"] for row in rows] == ["trip", "trip", "cancellation_fee", "total"]
    total = rows[-1]
    assert (total["fare_total"], total["driver_earnings"], total["pay_total"]) == (
        "14.00",
        "12.88",
        statement["pay_total"],
    )
    assert sum(Decimal(row["driver_earnings"]) for row in rows[:-1]) == Decimal("12.88")

    # Another driver's statement of the same period holds none of these trips.
    theirs = await client.get(
        f"/v1/drivers/me/statements/{current['period_start']}", headers=other.headers
    )
    assert theirs.json()["lines"] == [] and theirs.json()["pay_total"] == "0.00"


async def test_statements_refuse_bad_input_and_other_accounts(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    rider = await make_rider(client)
    [current] = (await client.get("/v1/drivers/me/statements", headers=driver.headers)).json()
    start = date.fromisoformat(current["period_start"])
    path = "/v1/drivers/me/statements"
    tuesday = (start + timedelta(days=1)).isoformat()
    body = problem(
        await client.get(f"{path}/{tuesday}", headers=driver.headers), 422, "not_a_period_start"
    )
    assert tuesday in body["detail"] and body["field"] == "path.period_start"
    problem(
        await client.get(f"{path}/2020-01-06", headers=driver.headers), 404, "pay_period_not_found"
    )
    # Before the founding agreement: a Monday is a period that never was, any other day no
    # period start at all; neither is a missing agreement (was 503 no_agreement_in_force).
    problem(
        await client.get(f"{path}/1969-12-29", headers=driver.headers), 404, "pay_period_not_found"
    )
    problem(
        await client.get(f"{path}/0001-01-01", headers=driver.headers), 404, "pay_period_not_found"
    )
    problem(
        await client.get(f"{path}/1969-12-30", headers=driver.headers), 422, "not_a_period_start"
    )
    far = (start + timedelta(days=70)).isoformat()
    problem(await client.get(f"{path}/{far}", headers=driver.headers), 404, "pay_period_not_found")
    problem(await client.get(f"{path}/2026-02-30", headers=driver.headers), 422, "validation_error")
    problem(
        await client.get(f"{path}/{start.isoformat()}?format=xml", headers=driver.headers),
        422,
        "validation_error",
    )
    problem(await client.get(path, headers=rider.headers), 403, "forbidden")
    problem(await client.get(path, headers=admin_headers), 403, "forbidden")
    problem(await client.get(path), 401, "unauthorized")
    problem(await client.get(f"{path}?limit=0", headers=driver.headers), 422, "validation_error")


async def test_receipts_are_itemised_for_the_rider_and_the_driver_each_without_the_other(
    app: FastAPI, client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip = await completed_trip(app, client, session, rider, driver)
    path = f"/v1/trips/{trip['id']}/receipt"

    for_rider = await client.get(path, headers=rider.headers)
    assert for_rider.status_code == 200, for_rider.text
    receipt = for_rider.json()
    assert receipt["copy_for"] == "rider" and receipt["kind"] == "trip"
    assert str(driver.id) not in for_rider.text
    assert receipt["total"] == trip["fare"]["total"] == "7.00"
    assert receipt["minimum_applied"] is True and receipt["cap_applied"] is False
    assert (receipt["commission"], receipt["driver_earnings"]) == ("0.56", "6.44")
    assert [item["item"] for item in receipt["items"]] == ["base", "distance", "time"]
    assert receipt["items"][0]["amount"] == "3.50"
    version = (await client.get("/v1/agreements/1")).json()
    assert (receipt["agreement_version"], receipt["agreement_sha256"]) == (1, version["sha256"])
    # The law's lines (docs/jurisdiction.md): the dues under their legal name, each tax on the
    # fare and the dues, and what the rider was billed, within what they consented to.
    assert receipt["dues"] == {"name": "Per-trip dues", "name_fr": "Redevance", "amount": "0.90"}
    assert [(t["name"], t["percent"], t["amount"]) for t in receipt["taxes"]] == [
        ("GST", "5", "0.40"),  # 5 % of 7.90 = 0.395
        ("QST", "9.975", "0.79"),  # 9.975 % of 7.90 = 0.788
    ]
    assert receipt["amount_billed"] == "9.09"
    assert receipt["max_total"] is not None
    assert Decimal(receipt["amount_billed"]) <= Decimal(receipt["max_total"])
    # Neither the dues nor the taxes touch the fare's split.
    assert Decimal(receipt["commission"]) + Decimal(receipt["driver_earnings"]) == Decimal("7.00")

    for_driver = await client.get(path, headers=driver.headers)
    assert for_driver.json()["copy_for"] == "driver"
    assert str(rider.id) not in for_driver.text
    assert {k: v for k, v in for_driver.json().items() if k != "copy_for"} == {
        k: v for k, v in receipt.items() if k != "copy_for"
    }

    # A cancellation that charged a fee has a receipt; one that did not, and an open trip, none.
    fee = await fee_paid_trip(app, client, session, await make_rider(client, "Late"), driver)
    fee_receipt = (
        await client.get(f"/v1/trips/{fee['id']}/receipt", headers=driver.headers)
    ).json()
    assert (fee_receipt["kind"], fee_receipt["total"], fee_receipt["driver_earnings"]) == (
        "cancellation_fee",
        "5.00",
        "5.00",
    )
    assert (fee_receipt["dues"], fee_receipt["taxes"], fee_receipt["amount_billed"]) == (
        None,
        [],
        "5.00",
    )
    waiting_rider = await make_rider(client, "Waiting")
    waiting = await request_trip(client, waiting_rider)
    body = problem(
        await client.get(f"/v1/trips/{waiting['id']}/receipt", headers=waiting_rider.headers),
        409,
        "no_receipt",
    )
    assert body["trip_status"] == "requested"

    # Nobody else: another rider, another driver, the admin; an unknown trip is 404.
    stranger = await make_rider(client, "Stranger")
    other_driver = await make_driver(client, admin_headers, name="Other")
    problem(await client.get(path, headers=stranger.headers), 403, "not_your_trip")
    problem(await client.get(path, headers=other_driver.headers), 403, "not_your_trip")
    problem(await client.get(path, headers=admin_headers), 403, "not_your_trip")
    problem(
        await client.get(f"/v1/trips/{uuid.uuid4()}/receipt", headers=rider.headers),
        404,
        "trip_not_found",
    )
    problem(
        await client.get("/v1/trips/not-a-uuid/receipt", headers=rider.headers),
        422,
        "validation_error",
    )


async def _statement_rows(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(PayStatement)) or 0)


async def test_a_period_closes_across_a_restart_exactly_once_with_its_top_up(
    settings: Settings, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    clock = Clock(utcnow())
    first = create_app(settings)
    first.state.clock = clock
    async with (
        LifespanManager(first),
        AsyncClient(transport=ASGITransport(app=first), base_url="http://test") as client,
    ):
        rider = await make_rider(client)
        driver = await make_driver(client, admin_headers)
        # One minimum-fare trip after an hour engaged: 6.44 earned, far under 24.00.
        trip = await completed_trip(first, client, session, rider, driver, engaged_s=3600)
        [open_] = (await client.get("/v1/drivers/me/statements", headers=driver.headers)).json()
        assert open_["status"] == "open" and open_["earnings_total"] == "6.44"
        start = open_["period_start"]

    # The service is down when the period ends; it comes back a week and a day later.
    clock.advance(days=8)
    closed_body = None
    for _ in range(2):
        app = create_app(settings)
        app.state.clock = clock
        async with (
            LifespanManager(app),
            AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
        ):
            read = await client.get(f"/v1/drivers/me/statements/{start}", headers=driver.headers)
            body = read.json()
            assert body["status"] == "closed", body
            assert body["closed_at"] is not None
            if closed_body is None:
                closed_body = body
            assert body == closed_body  # the second start closes nothing again
        clock.advance(hours=1)
    assert closed_body is not None
    engaged = closed_body["engaged_seconds"]
    floor = (Decimal(engaged) * Decimal("24.00") / 3600).quantize(Decimal("0.01"))
    assert closed_body["floor_due"] == str(floor) and floor >= Decimal("24.00")
    assert closed_body["top_up"] == str(floor - Decimal("6.44"))
    assert closed_body["pay_total"] == str(floor)
    assert [line["trip_id"] for line in closed_body["lines"]] == [trip["id"]]
    closes = await session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.kind == "pay.period_closed")
    )
    assert closes == 1
    assert await _statement_rows(session) == 1

    # A trip whose record arrives after its period closed goes on the next statement, marked.
    app = create_app(settings)
    app.state.clock = clock
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        late = await completed_trip(app, client, session, rider, driver, engaged_s=600)
        again = (
            await client.get(f"/v1/drivers/me/statements/{start}", headers=driver.headers)
        ).json()
        assert again == closed_body  # a closed statement never changes
        listing = (await client.get("/v1/drivers/me/statements", headers=driver.headers)).json()
        assert [s["status"] for s in listing] == ["open", "closed"]
        current = (
            await client.get(
                f"/v1/drivers/me/statements/{listing[0]['period_start']}", headers=driver.headers
            )
        ).json()
        assert [(line["trip_id"], line["adjustment"]) for line in current["lines"]] == [
            (late["id"], True)
        ]
        # The closed statement is in the driver's personal-data export.
        export = (await client.get("/v1/drivers/me/export", headers=driver.headers)).json()
        [exported] = export["pay_statements"]
        assert (exported["period_start"], exported["pay_total"]) == (
            start,
            closed_body["pay_total"],
        )
        assert [line["trip_id"] for line in exported["lines"]] == [trip["id"]]
    # The database refuses to change a closed statement.
    try:
        await session.execute(text("UPDATE pay_statement SET top_up = 0"))
        raise AssertionError("a closed statement was changed")
    except DBAPIError as exc:
        assert "never change" in str(exc)
    await session.rollback()


async def test_two_workers_closing_at_once_close_each_period_once(
    app: FastAPI,
    client: AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    admin_headers: dict[str, str],
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    await completed_trip(app, client, session, rider, driver)
    later = utcnow() + timedelta(days=15)

    async def close() -> list[date]:
        async with sessionmaker() as own:
            return await closing.close_due(session=own, now=later)

    results = await asyncio.gather(close(), close(), close())
    closed = sorted(d for result in results for d in result)
    periods = list(await session.scalars(select(PayPeriod).order_by(PayPeriod.starts_at)))
    assert closed == [p.start_date for p in periods if p.closed_at is not None]
    assert len(closed) == len(set(closed)) >= 2
    assert await session.scalar(select(func.count()).select_from(PayStatementLine)) == 1
    # Each period starts where the previous one ended.
    for before, after in zip(periods, periods[1:], strict=False):
        assert after.starts_at == before.ends_at


async def test_the_public_pay_report_suppresses_periods_of_fewer_than_five_drivers(
    settings: Settings, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    clock = Clock(utcnow())
    app = create_app(settings)
    app.state.clock = clock
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        rider = await make_rider(client)
        drivers: list[Account] = []
        for index in range(5):
            driver = await make_driver(client, admin_headers, name=f"Driver {index}")
            drivers.append(driver)
            await completed_trip(app, client, session, rider, driver, engaged_s=600 * (index + 1))
        [current] = (
            await client.get("/v1/drivers/me/statements", headers=drivers[0].headers)
        ).json()
        assert (await client.get("/v1/transparency/pay")).json()["periods"] == []  # still open
        clock.advance(days=8)
        report = (await client.get("/v1/transparency/pay")).json()
        assert report["minimum_drivers"] == 5
        [period] = [p for p in report["periods"] if p["period_start"] == current["period_start"]]
        assert period["suppressed"] is False and period["drivers"] == 5
        assert (period["trips"], period["fares_total"], period["commission_total"]) == (
            5,
            "35.00",
            "2.80",
        )
        assert period["take_rate_percent"] == "8.00"
        assert Decimal(period["top_ups_total"]) > 0
        # Earnings per engaged hour: 6.44 over 10, 20, ... 50 minutes; the median is 30 min's.
        assert period["earnings_per_engaged_hour"]["median"] is not None
        assert Decimal(period["earnings_per_engaged_hour"]["p10"]) < Decimal(
            period["earnings_per_engaged_hour"]["median"]
        )
        assert Decimal(period["pay_per_engaged_hour"]["p10"]) >= Decimal("24.00") - Decimal("0.01")
        for driver in drivers:
            assert str(driver.id) not in str(report)
        # The next period, with a single driver, is withheld.
        await completed_trip(app, client, session, rider, drivers[0])
        clock.advance(days=7)
        report = (await client.get("/v1/transparency/pay")).json()
        later = [p for p in report["periods"] if p["drivers"] == 1]
        assert later and later[0]["suppressed"] is True and later[0]["fares_total"] is None
        window = await client.get(
            f"/v1/transparency/pay?from={current['period_start']}&to={current['period_start']}"
        )
        assert [p["period_start"] for p in window.json()["periods"]] == [current["period_start"]]
        problem(
            await client.get("/v1/transparency/pay?from=2026-02-01&to=2026-01-01"),
            422,
            "validation_error",
        )
        problem(await client.get("/v1/transparency/pay?from=yesterday"), 422, "validation_error")
