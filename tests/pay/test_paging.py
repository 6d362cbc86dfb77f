"""Pay's lists follow the API's paging convention (docs/protocol.md, "Paging"), and a receipt
says when the fare was capped at its quote."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.models import PatronageAllocation, PatronageLine, Proposal, ProposalKind
from bargaining.models import ProposalStatus as Status
from coop.db import utcnow
from coop.settings import Settings
from server.app import create_app
from tests.bargaining.conftest import Clock
from tests.builders import Account, assigned_trip, make_driver, make_rider
from tests.pay.helpers import completed_trip, problem, shift


async def walk(
    client: AsyncClient, path: str, headers: dict[str, str] | None = None
) -> list[Response]:
    """Every page of a list from `path`, following each page's `Link: <...>; rel="next"` (and
    checking it names the same cursor as `X-Next-Cursor`): the pages, each as the list it held."""
    pages: list[Response] = []
    url: str | None = path
    while url is not None:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response)
        url = next_page(response)
        assert len(pages) < 20, "the pages never end"
    return pages


def next_page(response: Response) -> str | None:
    cursor: str | None = response.headers.get("X-Next-Cursor")
    link: str | None = response.headers.get("Link")
    if cursor is None:
        assert link is None
        return None
    assert link is not None and link.endswith('>; rel="next"') and f"cursor={cursor}" in link
    return link[1 : link.index(">")]


async def test_statements_and_the_pay_report_page_over_more_periods_than_a_page(
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
        driver = await make_driver(client, admin_headers)
        await completed_trip(app, client, session, rider, driver)
        # Five weeks on: the driver has six periods, five of them closed.
        clock.advance(days=35)
        everything = await client.get("/v1/drivers/me/statements", headers=driver.headers)
        assert everything.status_code == 200 and "X-Next-Cursor" not in everything.headers
        statements = everything.json()
        assert len(statements) == 6 and statements[0]["status"] == "open"
        starts = [s["period_start"] for s in statements]
        assert starts == sorted(starts, reverse=True)  # newest first

        pages = await walk(client, "/v1/drivers/me/statements?limit=4", driver.headers)
        assert [len(page.json()) for page in pages] == [4, 2]
        pages = await walk(client, "/v1/drivers/me/statements?limit=2", driver.headers)
        assert [len(page.json()) for page in pages] == [2, 2, 2]
        assert [s for page in pages for s in page.json()] == statements

        # A period that closes between two pages shifts nothing: the keyset is its start.
        first = await client.get("/v1/drivers/me/statements?limit=2", headers=driver.headers)
        clock.advance(days=7)
        rest = await walk(client, next_page(first) or "", driver.headers)
        assert [s["period_start"] for page in rest for s in page.json()] == starts[2:]

        # The public report's closed periods, oldest first, a page at a time.
        report = (await client.get("/v1/transparency/pay?limit=500")).json()["periods"]
        assert len(report) >= 6
        pages = await walk(client, "/v1/transparency/pay?limit=4")
        assert [len(page.json()["periods"]) for page in pages[:-1]] == [4] * (len(pages) - 1)
        assert [p for page in pages for p in page.json()["periods"]] == report
        assert all(page.json()["minimum_drivers"] == 5 for page in pages)
        # The dates still filter every page.
        window = f"from={report[1]['period_start']}&to={report[3]['period_start']}"
        pages = await walk(client, f"/v1/transparency/pay?{window}&limit=2")
        assert [p["period_start"] for page in pages for p in page.json()["periods"]] == [
            p["period_start"] for p in report[1:4]
        ]

        # Bad paging input is named; a cursor belongs to its list.
        statements_cursor = first.headers["X-Next-Cursor"]
        report_cursor = (await client.get("/v1/transparency/pay?limit=1")).headers["X-Next-Cursor"]
        for path, headers in (
            (f"/v1/transparency/pay?cursor={statements_cursor}", None),
            (f"/v1/drivers/me/statements?cursor={report_cursor}", driver.headers),
            ("/v1/drivers/me/statements?cursor=bm90LWEtY3Vyc29y", driver.headers),
        ):
            body = problem(await client.get(path, headers=headers), 422, "validation_error")
            assert body["errors"][0]["field"] == "query.cursor", body
        for path in (
            "/v1/drivers/me/statements?limit=521",
            "/v1/drivers/me/statements?limit=0",
            "/v1/drivers/me/statements?cursor=not%20a%20cursor",
        ):
            problem(await client.get(path, headers=driver.headers), 422, "validation_error")
        problem(await client.get("/v1/transparency/pay?limit=501"), 422, "validation_error")
        # The old bound still holds for statements: 520 is allowed.
        assert (
            await client.get("/v1/drivers/me/statements?limit=520", headers=driver.headers)
        ).status_code == 200


async def _posted_dividend(
    session: AsyncSession, drivers: list[Account], *, first_day: date
) -> uuid.UUID:
    """A dividend already ratified and posted, written as the ledger holds it."""
    now = utcnow()
    proposal = Proposal(
        kind=ProposalKind.patronage,
        title=f"Dividend from {first_day}",
        rationale="A surplus shared out.",
        base_version=1,
        voting_closes_at=now,
        status=Status.ratified,
        opened_at=now - timedelta(hours=1),
        closed_at=now,
        eligible=len(drivers),
    )
    session.add(proposal)
    await session.flush()
    session.add(
        PatronageAllocation(
            proposal_id=proposal.id,
            period_from=first_day,
            period_to=first_day + timedelta(days=6),
            basis="trips",
            currency="CAD",
            surplus=Decimal("100.00"),
            reserve_percent=Decimal("30"),
            reserve=Decimal("30.00"),
            distributable=Decimal("70.00"),
            members=len(drivers),
            allocated_at=now,
        )
    )
    await session.flush()
    for driver in drivers:
        session.add(
            PatronageLine(
                proposal_id=proposal.id,
                driver_id=driver.id,
                measure=Decimal(1),
                share=Decimal("70.00") / len(drivers),
            )
        )
    await session.commit()
    return proposal.id


async def test_patronage_lists_page_newest_period_first(
    app: FastAPI, client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    member = await make_driver(client, admin_headers, name="Member")
    other = await make_driver(client, admin_headers, name="Other")
    monday = date(2026, 1, 5)
    posted = [
        await _posted_dividend(
            session,
            [member, other] if week % 2 else [member],
            first_day=monday + timedelta(weeks=week),
        )
        for week in range(5)
    ]
    newest_first = [str(proposal_id) for proposal_id in reversed(posted)]

    pages = await walk(client, "/v1/drivers/me/patronage?limit=2", member.headers)
    assert [len(page.json()) for page in pages] == [2, 2, 1]
    lines = [line for page in pages for line in page.json()]
    assert [line["proposal_id"] for line in lines] == newest_first
    assert all(line["status"] == "allocated" for line in lines)
    theirs = await walk(client, "/v1/drivers/me/patronage?limit=1", other.headers)
    assert [line["proposal_id"] for page in theirs for line in page.json()] == [
        str(posted[3]),
        str(posted[1]),
    ]

    pages = await walk(client, "/v1/transparency/patronage?limit=3")
    assert [len(page.json()) for page in pages] == [3, 2]
    assert [row["proposal_id"] for page in pages for row in page.json()] == newest_first
    unpaged = (await client.get("/v1/transparency/patronage")).json()
    assert [row["proposal_id"] for row in unpaged] == newest_first

    # Each list's cursor is its own.
    mine_cursor = (
        await client.get("/v1/drivers/me/patronage?limit=1", headers=member.headers)
    ).headers["X-Next-Cursor"]
    public_cursor = (await client.get("/v1/transparency/patronage?limit=1")).headers[
        "X-Next-Cursor"
    ]
    body = problem(
        await client.get(f"/v1/transparency/patronage?cursor={mine_cursor}"),
        422,
        "validation_error",
    )
    assert body["errors"][0]["field"] == "query.cursor"
    problem(
        await client.get(
            f"/v1/drivers/me/patronage?cursor={public_cursor}", headers=member.headers
        ),
        422,
        "validation_error",
    )
    problem(
        await client.get("/v1/drivers/me/patronage?limit=0", headers=member.headers),
        422,
        "validation_error",
    )


async def test_a_capped_fare_has_a_receipt_that_says_so(
    app: FastAPI, client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    trip = await assigned_trip(app, client, rider, driver)
    for step in ("arrived", "start"):
        response = await client.post(f"/v1/trips/{trip['id']}/{step}", headers=driver.headers)
        assert response.status_code == 200, response.text
    # Two hours under way: 42.00 of time alone, far above the quote plus 50 %.
    await shift(session, trip["id"], "started_at", 7200)
    done = await client.post(f"/v1/trips/{trip['id']}/complete", headers=driver.headers)
    assert done.status_code == 200, done.text
    fare = done.json()["fare"]
    assert done.json()["fare_capped"] is True

    for account, copy_for in ((rider, "rider"), (driver, "driver")):
        response = await client.get(f"/v1/trips/{trip['id']}/receipt", headers=account.headers)
        assert response.status_code == 200, response.text
        receipt = response.json()
        assert receipt["copy_for"] == copy_for
        assert receipt["fare_capped"] is True
        quote = Decimal(receipt["quote_total"])
        assert quote == Decimal(trip["quote"]["total"])
        assert receipt["max_over_quote_percent"] == "50"
        assert (
            receipt["total"]
            == fare["total"]
            == str((quote * Decimal("1.5")).quantize(Decimal("0.01")))
        )
        assert receipt["metered_total"] == fare["metered_total"]
        assert Decimal(receipt["metered_total"]) > Decimal(receipt["total"])
        assert (receipt["commission"], receipt["driver_earnings"]) == (
            fare["coop_commission"],
            fare["driver_earnings"],
        )
        assert Decimal(receipt["commission"]) + Decimal(receipt["driver_earnings"]) == Decimal(
            receipt["total"]
        )
        # The items are the meter's: about two hours at 0.35 a minute.
        time_item = next(item for item in receipt["items"] if item["item"] == "time")
        assert Decimal(time_item["amount"]) >= Decimal("42.00")
        assert receipt["fare_cap_reason"] and fare["metered_total"] in receipt["fare_cap_reason"]

    # An ordinary trip's receipt says it was not capped, and shows its quote all the same.
    plain = await completed_trip(app, client, session, await make_rider(client, "Other"), driver)
    receipt = (await client.get(f"/v1/trips/{plain['id']}/receipt", headers=driver.headers)).json()
    assert receipt["fare_capped"] is False and receipt["fare_cap_reason"] is None
    assert receipt["metered_total"] == receipt["total"] == plain["fare"]["total"]
    assert receipt["quote_total"] == plain["quote"]["total"]
