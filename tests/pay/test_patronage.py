"""The patronage dividend end to end: proposed with its allocation shown, voted, ratified, posted
to the ledger, each member's line visible to them, totals public, the audit log recording it."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from coop.audit import AuditEntry
from coop.db import utcnow
from coop.settings import Settings
from server.app import create_app
from tests.bargaining.conftest import Clock
from tests.builders import Account, make_driver, make_rider
from tests.pay.helpers import completed_trip, problem


def dividend(
    clock: Clock, *, days_from: int, days_to: int, surplus: Any = "1000.00"
) -> dict[str, Any]:
    """A patronage proposal over local days relative to today (0: today, -1: yesterday...)."""
    today = utcnow().astimezone(ZoneInfo("America/Toronto")).date()
    return {
        "kind": "patronage",
        "title": "Return the autumn surplus",
        "rationale": "The books closed with a surplus; it goes back to those who did the work.",
        "period": {
            "from": (today + timedelta(days=days_from)).isoformat(),
            "to": (today + timedelta(days=days_to)).isoformat(),
        },
        "surplus": surplus,
        "voting_closes_at": (clock.now + timedelta(hours=1)).isoformat(),
    }


def week_of(clock: Clock, weeks_ago: int = 0) -> tuple[date, date]:
    """The local Monday and Sunday of the pay week holding the clock's now, or of one before."""
    day = clock.now.astimezone(ZoneInfo("America/Toronto")).date()
    monday = day - timedelta(days=day.weekday(), weeks=weeks_ago)
    return monday, monday + timedelta(days=6)


def dividend_over(
    clock: Clock, period: tuple[date, date], *, surplus: str = "1000.00"
) -> dict[str, Any]:
    """A patronage proposal over the local days `period` (both included)."""
    return {
        "kind": "patronage",
        "title": "Return the autumn surplus",
        "rationale": "The books closed with a surplus; it goes back to those who did the work.",
        "period": {"from": period[0].isoformat(), "to": period[1].isoformat()},
        "surplus": surplus,
        "voting_closes_at": (clock.now + timedelta(hours=1)).isoformat(),
    }


async def _lines(client: AsyncClient, member: Account) -> list[dict[str, Any]]:
    response = await client.get("/v1/drivers/me/patronage", headers=member.headers)
    assert response.status_code == 200, response.text
    lines: list[dict[str, Any]] = response.json()
    return lines


async def test_a_dividend_is_voted_ratified_posted_and_each_member_sees_their_line(
    settings: Settings, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    clock = Clock(utcnow())
    app = create_app(settings)
    app.state.clock = clock
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        chair = await make_driver(client, admin_headers, name="Chair", committee=True)
        busy = await make_driver(client, admin_headers, name="Busy")
        light = await make_driver(client, admin_headers, name="Light")
        others = [await make_driver(client, admin_headers, name=f"Steady {n}") for n in range(3)]
        rider = await make_rider(client)
        await completed_trip(app, client, session, rider, busy, engaged_s=7200)
        await completed_trip(app, client, session, rider, busy, engaged_s=3600)
        await completed_trip(app, client, session, rider, light, engaged_s=1800)
        for other in others:
            await completed_trip(app, client, session, rider, other, engaged_s=2400)
        # A week on, the committee proposes a dividend over the pay week the work was done in.
        week = week_of(clock)
        clock.advance(days=7)
        body = dividend_over(clock, week)
        created = await client.post("/v1/proposals", json=body, headers=chair.headers)
        assert created.status_code == 201, created.text
        proposal = created.json()
        assert (proposal["kind"], proposal["status"], proposal["terms"]) == (
            "patronage",
            "open",
            None,
        )
        shown = proposal["patronage"]
        assert (shown["basis"], shown["surplus"], shown["reserve_percent"]) == (
            "engaged_seconds",
            "1000.00",
            "30",
        )
        assert (shown["reserve"], shown["distributable"], shown["members"]) == (
            "300.00",
            "700.00",
            5,
        )
        assert sum(Decimal(line["share"]) for line in shown["lines"]) == Decimal("700.00")
        first, *_, last = shown["lines"]
        assert Decimal(first["measure"]) > Decimal(last["measure"])
        assert Decimal(first["measure"]) >= 10800 and Decimal(last["measure"]) >= 1800
        assert str(busy.id) not in created.text  # no line names anyone
        # The lines are the members' to read; the public and riders see the totals only.
        path = f"/v1/proposals/{proposal['id']}"
        anonymous = await client.get(path)
        rider_view = await client.get(path, headers=rider.headers)
        stale = await client.get(path, headers={"Authorization": "Bearer not-a-token"})
        for public in (anonymous.json(), rider_view.json(), stale.json()):
            assert public["patronage"]["lines"] is None
            assert public["patronage"]["members"] == 5
        listed = await client.get("/v1/proposals", headers=light.headers)
        assert listed.json()[0]["patronage"]["lines"] == shown["lines"]
        # Before the vote, each member sees the line they would get.
        [pending] = await _lines(client, busy)
        assert (pending["status"], pending["share"]) == ("proposed", first["share"])
        assert await _lines(client, chair) == []  # no patronage in the period: nothing

        for member in (chair, busy, light, *others):
            cast = await client.post(
                f"/v1/proposals/{proposal['id']}/ballot",
                json={"choice": "yes"},
                headers=member.headers,
            )
            assert cast.status_code == 200, cast.text
        clock.advance(hours=2)
        closed = (await client.get(f"/v1/proposals/{proposal['id']}")).json()
        assert closed["status"] == "ratified" and closed["version"] is None
        # No new agreement version: a dividend changes no term.
        assert (await client.get("/v1/agreements/current")).json()["version"] == 1

        [mine] = await _lines(client, busy)
        assert (mine["status"], mine["share"], mine["measure"]) == (
            "allocated",
            first["share"],
            first["measure"],
        )
        [theirs] = await _lines(client, light)
        assert theirs["share"] == last["share"]
        export = (await client.get("/v1/drivers/me/export", headers=light.headers)).json()
        assert [(e["proposal_id"], e["share"]) for e in export["patronage"]] == [
            (proposal["id"], last["share"])
        ]
        totals = (await client.get("/v1/transparency/patronage")).json()
        assert [
            (t["proposal_id"], t["distributable"], t["reserve"], t["members"]) for t in totals
        ] == [(proposal["id"], "700.00", "300.00", 5)]
        # The same period cannot be shared out twice.
        again = await client.post(
            "/v1/proposals", json=dividend_over(clock, week), headers=chair.headers
        )
        body409 = problem(again, 409, "patronage_period_taken")
        assert body409["proposal_id"] == proposal["id"]
        # Nor before the co-op's first pay period, nor over more than max_period_days.
        before = await client.post(
            "/v1/proposals",
            json=dividend_over(clock, week_of(clock, weeks_ago=2), surplus="10.00"),
            headers=chair.headers,
        )
        assert "period.from" in [
            e["field"] for e in problem(before, 422, "invalid_proposal")["errors"]
        ]

    allocated = await session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.kind == "patronage.allocated")
    )
    assert allocated == 1
    try:
        await session.execute(text("UPDATE patronage_line SET share = share + 1"))
        raise AssertionError("the ledger was changed")
    except DBAPIError as exc:
        assert "append-only" in str(exc)
    await session.rollback()


async def test_a_patronage_proposal_with_bad_input_is_refused_naming_the_field(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    clock = Clock(utcnow())
    app = create_app(settings)
    app.state.clock = clock
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        chair = await make_driver(client, admin_headers, name="Chair", committee=True)
        member = await make_driver(client, admin_headers, name="Member")

        async def refused(body: dict[str, Any], field: str, status: int = 422) -> None:
            response = await client.post("/v1/proposals", json=body, headers=chair.headers)
            types = {422: ("validation_error", "invalid_proposal")}
            assert response.status_code == status, response.text
            payload = response.json()
            assert payload["type"] in types[status], payload
            assert field in [error["field"] for error in payload["errors"]], payload

        for surplus in ("-5.00", 5.5, 5, "1.234", "abc", "", "0.00", "1e3"):
            await refused(dividend(clock, days_from=-3, days_to=-1, surplus=surplus), "surplus")
        await refused(dividend(clock, days_from=-1, days_to=-3), "period.from")
        await refused(dividend(clock, days_from=-1, days_to=0), "period.to")  # today: not over
        missing = dividend(clock, days_from=-3, days_to=-1)
        del missing["surplus"]
        await refused(missing, "surplus")
        with_terms = {**dividend(clock, days_from=-3, days_to=-1), "terms": {"currency": "CAD"}}
        response = await client.post("/v1/proposals", json=with_terms, headers=chair.headers)
        assert response.status_code == 422
        terms_kind = {**dividend(clock, days_from=-3, days_to=-1), "kind": "terms"}
        await refused(terms_kind, "terms")
        bad_date = dividend(clock, days_from=-3, days_to=-1)
        bad_date["period"]["to"] = "2026-02-30"
        await refused(bad_date, "period.to")
        # Only the committee proposes.
        problem(
            await client.post(
                "/v1/proposals",
                json=dividend(clock, days_from=-3, days_to=-1),
                headers=member.headers,
            ),
            403,
            "forbidden",
        )
        assert (await client.get("/v1/proposals")).json() == []
        problem(await client.get("/v1/drivers/me/patronage"), 401, "unauthorized")
        rider = await make_rider(client)
        problem(
            await client.get("/v1/drivers/me/patronage", headers=rider.headers), 403, "forbidden"
        )


async def test_a_dividend_never_lays_bare_one_members_work(
    settings: Settings, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    """The attack: a one-day dividend among three members published each one's engaged seconds
    to anyone. Spans are whole pay periods, among at least five members, and the lines are
    shown to members only."""
    clock = Clock(utcnow())
    app = create_app(settings)
    app.state.clock = clock
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        chair = await make_driver(client, admin_headers, name="Chair", committee=True)
        rider = await make_rider(client)
        for engaged_s in (60, 11, 6):
            driver = await make_driver(client, admin_headers, name=f"Driver {engaged_s}")
            await completed_trip(app, client, session, rider, driver, engaged_s=engaged_s)
        week = week_of(clock)
        day = clock.now.astimezone(ZoneInfo("America/Toronto")).date()
        clock.advance(days=7)

        one_day = await client.post(
            "/v1/proposals", json=dividend_over(clock, (day, day)), headers=chair.headers
        )
        fields = {e["field"] for e in problem(one_day, 422, "invalid_proposal")["errors"]}
        assert fields & {"period.from", "period.to"}, fields
        three = await client.post(
            "/v1/proposals", json=dividend_over(clock, week), headers=chair.headers
        )
        refusal = problem(three, 422, "invalid_proposal")
        assert [e["field"] for e in refusal["errors"]] == ["period"]
        assert "5" in refusal["detail"]
        assert (await client.get("/v1/proposals")).json() == []


async def test_an_open_dividend_takes_no_days_and_a_period_is_bounded(
    settings: Settings, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    """The attack: one committee member opened a dividend closing in 9999 over a period from
    1900, and its days were taken for good. A vote closes within governance.max_voting_days, a
    period starts no earlier than the co-op's first pay period and lasts at most
    patronage.max_period_days, and only a posted dividend takes days: of two overlapping ones
    ratified, the second is rejected as `period_taken`."""
    clock = Clock(utcnow())
    app = create_app(settings)
    app.state.clock = clock
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        chair = await make_driver(client, admin_headers, name="Chair", committee=True)
        rider = await make_rider(client)
        members = [await make_driver(client, admin_headers, name=f"M{n}") for n in range(5)]
        for member in members:
            await completed_trip(app, client, session, rider, member, engaged_s=1200)
        week = week_of(clock)
        clock.advance(days=7)

        async def refused(body: dict[str, Any], field: str) -> None:
            response = await client.post("/v1/proposals", json=body, headers=chair.headers)
            fields = [e["field"] for e in problem(response, 422, "invalid_proposal")["errors"]]
            assert field in fields, fields

        forever = {**dividend_over(clock, week), "voting_closes_at": "9999-12-31T00:00:00Z"}
        await refused(forever, "voting_closes_at")
        just_over = dividend_over(clock, week)
        just_over["voting_closes_at"] = (clock.now + timedelta(days=30, seconds=1)).isoformat()
        await refused(just_over, "voting_closes_at")
        await refused(dividend_over(clock, (date(1900, 1, 1), date(1900, 1, 7))), "period.from")
        two_years = (week[0] - timedelta(weeks=104), week[1])
        await refused(dividend_over(clock, two_years), "period.to")

        # Two dividends over the same days may be voted on side by side.
        first = await client.post(
            "/v1/proposals", json=dividend_over(clock, week), headers=chair.headers
        )
        assert first.status_code == 201, first.text
        later = dividend_over(clock, week, surplus="50.00")
        later["voting_closes_at"] = (clock.now + timedelta(days=30)).isoformat()
        second = await client.post("/v1/proposals", json=later, headers=chair.headers)
        assert second.status_code == 201, second.text
        for proposal in (first.json(), second.json()):
            for member in (chair, *members):
                cast = await client.post(
                    f"/v1/proposals/{proposal['id']}/ballot",
                    json={"choice": "yes"},
                    headers=member.headers,
                )
                assert cast.status_code == 200, cast.text
        clock.advance(days=31)
        posted = (await client.get(f"/v1/proposals/{first.json()['id']}")).json()
        assert (posted["status"], posted["tally"]["reason"]) == ("ratified", "approved")
        too_late = (await client.get(f"/v1/proposals/{second.json()['id']}")).json()
        assert (too_late["status"], too_late["tally"]["reason"]) == ("rejected", "period_taken")
        totals = (await client.get("/v1/transparency/patronage")).json()
        assert [t["proposal_id"] for t in totals] == [first.json()["id"]]
        # Now the days are taken.
        problem(
            await client.post(
                "/v1/proposals",
                json=dividend_over(clock, week),
                headers=chair.headers,
            ),
            409,
            "patronage_period_taken",
        )
