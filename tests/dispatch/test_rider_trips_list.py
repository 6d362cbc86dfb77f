"""`GET /v1/riders/me/trips`: a rider's own trips, newest first, paged, over HTTP against the
real database (docs/protocol.md, "A rider's trips")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from coop import paging
from tests.builders import Account, make_driver, make_rider, request_trip
from tests.pay.helpers import completed_trip, fee_paid_trip

PATH = "/v1/riders/me/trips"


async def _cancelled_trip(client: AsyncClient, rider: Account) -> dict[str, Any]:
    """A trip its rider requested and cancelled at once (free: no driver was on the way)."""
    trip = await request_trip(client, rider)
    response = await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)
    assert response.status_code == 200, response.text
    return trip


async def _page(
    client: AsyncClient, rider: Account, **params: Any
) -> tuple[list[dict[str, Any]], str | None]:
    response = await client.get(PATH, params=params, headers=rider.headers)
    assert response.status_code == 200, response.text
    cursor = response.headers.get("x-next-cursor")
    if cursor is not None:
        link = response.headers["link"]
        target = urlsplit(link[1 : link.index(">")])
        assert target.path == PATH
        assert parse_qs(target.query)["cursor"] == [cursor]
    else:
        assert "link" not in response.headers
    body: list[dict[str, Any]] = response.json()
    return body, cursor


async def test_a_rider_lists_their_trips_newest_first_with_what_each_cost(
    app: FastAPI, client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers, name="Dana Tremblay")
    ridden = await completed_trip(app, client, session, rider, driver)
    charged = await fee_paid_trip(app, client, session, rider, driver)
    free = await _cancelled_trip(client, rider)
    waiting = await request_trip(client, rider)

    items, cursor = await _page(client, rider)
    assert cursor is None
    newest_first = [waiting, free, charged, ridden]
    assert [item["id"] for item in items] == [trip["id"] for trip in newest_first]
    statuses = [item["status"] for item in items]
    assert statuses == ["requested", "cancelled", "cancelled", "completed"]
    requested = [datetime.fromisoformat(item["requested_at"]) for item in items]
    assert requested == sorted(requested, reverse=True)

    latest, cancelled_free, cancelled_fee, done = items
    assert latest["driver_first_name"] is None
    assert latest["price"] is None and latest["receipt_url"] is None
    assert latest["pickup"] == waiting["pickup"] and latest["dropoff"] == waiting["dropoff"]
    assert latest["quote_total"] == waiting["quote"]["total"]
    assert cancelled_free["price"] is None and cancelled_free["receipt_url"] is None
    assert cancelled_free["cancelled_by"] == "rider"

    # The driver is named by the first name a rider greets them by, never by their account.
    assert done["driver_first_name"] == "Dana"
    assert cancelled_fee["driver_first_name"] == "Dana"
    assert str(driver.id) not in str(items)
    assert done["ended_at"] is not None and done["started_at"] is not None

    # What each cost is the receipt's own figures, and the link opens that receipt.
    for item, kind in ((done, "trip"), (cancelled_fee, "cancellation_fee")):
        assert item["receipt_url"] == f"/v1/trips/{item['id']}/receipt"
        receipt = await client.get(item["receipt_url"], headers=rider.headers)
        assert receipt.status_code == 200, receipt.text
        assert item["price"] == {
            "kind": kind,
            "total": receipt.json()["total"],
            "amount_billed": receipt.json()["amount_billed"],
            "currency": receipt.json()["currency"],
        }
    assert done["price"]["total"] == ridden["fare"]["total"]
    # A ride bears the jurisdiction's dues and taxes (Québec); a fee bears none.
    assert done["price"]["amount_billed"] != done["price"]["total"]
    assert cancelled_fee["price"]["amount_billed"] == "5.00"


async def test_the_state_filter_keeps_only_the_trips_asked_for(
    app: FastAPI, client: AsyncClient, session: AsyncSession, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    ridden = await completed_trip(app, client, session, rider, driver)
    free = await _cancelled_trip(client, rider)
    waiting = await request_trip(client, rider)

    for state, expected in (
        ("completed", [ridden]),
        ("cancelled", [free]),
        ("open", [waiting]),
        ("requested", [waiting]),
        ("ended", [free, ridden]),
        ("unfulfilled", []),
    ):
        items, _ = await _page(client, rider, state=state)
        assert [item["id"] for item in items] == [trip["id"] for trip in expected], state


async def test_pages_neither_repeat_nor_skip_when_a_trip_is_requested_between_them(
    client: AsyncClient,
) -> None:
    rider = await make_rider(client)
    made = [await _cancelled_trip(client, rider) for _ in range(5)]
    newest_first = [trip["id"] for trip in reversed(made)]

    first, cursor = await _page(client, rider, limit=2)
    assert [item["id"] for item in first] == newest_first[:2]
    assert cursor is not None

    # A trip requested between two pages: newer than every page, so it never shifts them.
    between = await request_trip(client, rider)

    seen = [item["id"] for item in first]
    while cursor is not None:
        page, cursor = await _page(client, rider, limit=2, cursor=cursor)
        assert 0 < len(page) <= 2
        seen += [item["id"] for item in page]
    assert seen == newest_first
    assert len(set(seen)) == len(seen)

    fresh, _ = await _page(client, rider, limit=2)
    assert fresh[0]["id"] == between["id"]


async def test_a_rider_never_sees_another_riders_trips(client: AsyncClient) -> None:
    alice = await make_rider(client, "Alice Côté")
    bruno = await make_rider(client, "Bruno Roy")
    alices = [await _cancelled_trip(client, alice) for _ in range(3)]

    items, cursor = await _page(client, bruno)
    assert items == [] and cursor is None

    # Even on Alice's own cursor, Bruno reads only his list: a cursor holds a place, not a rider.
    _, alices_cursor = await _page(client, alice, limit=1)
    assert alices_cursor is not None
    items, _ = await _page(client, bruno, limit=1, cursor=alices_cursor)
    assert items == []
    theirs = await request_trip(client, bruno)
    items, _ = await _page(client, bruno)
    assert [item["id"] for item in items] == [theirs["id"]]
    assert not {trip["id"] for trip in alices} & {item["id"] for item in items}


async def test_only_a_riders_token_lists_trips(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    refused = await client.get(PATH, headers=driver.headers)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "forbidden"
    admin = await client.get(PATH, headers=admin_headers)
    assert admin.status_code == 403, admin.text
    anonymous = await client.get(PATH)
    assert anonymous.status_code == 401
    assert anonymous.json()["type"] == "unauthorized"
    wrong = await client.get(PATH, headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401


async def test_bad_cursors_limits_and_states_are_problem_details(client: AsyncClient) -> None:
    rider = await make_rider(client)
    for _ in range(2):
        await _cancelled_trip(client, rider)
    _, good = await _page(client, rider, limit=1)
    assert good is not None
    other_list = paging.encode_cursor("fare-reviews", (datetime.now(UTC), uuid.uuid4()))
    for params, field in (
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"cursor": good[:-1] + ("A" if good[-1] != "A" else "B")}, "query.cursor"),
        ({"cursor": other_list}, "query.cursor"),
        ({"cursor": "!!"}, "query.cursor"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 501}, "query.limit"),
        ({"state": "finished"}, "query.state"),
    ):
        response = await client.get(PATH, params=params, headers=rider.headers)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "validation_error"
        assert [error["field"] for error in problem["errors"]] == [field], params
