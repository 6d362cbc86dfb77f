"""Paged lists (ratings, appeals, proposals, support cases, audit) and bounded integer query
parameters, over HTTP against the real database."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.db import utcnow
from tests.builders import DOWNTOWN, make_driver, make_rider
from tests.reputation.helpers import rated_trip


async def walk(
    client: AsyncClient, path: str, headers: dict[str, str], limit: int
) -> list[list[dict[str, Any]]]:
    """Every page of a list, following X-Next-Cursor; checks that Link says the same."""
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"limit": limit}
    for _ in range(100):
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert isinstance(body, list)
        pages.append(body)
        cursor = response.headers.get("x-next-cursor")
        if cursor is None:
            assert "link" not in response.headers
            return pages
        link = response.headers["link"]
        assert link.endswith('>; rel="next"')
        target = urlsplit(link[1 : link.index(">")])
        assert target.path == path
        assert parse_qs(target.query)["cursor"] == [cursor]
        assert parse_qs(target.query)["limit"] == [str(limit)]
        params = {"limit": limit, "cursor": cursor}
    raise AssertionError("the pages never ended")


async def test_every_list_pages_with_a_cursor_and_a_plain_get_is_the_first_page(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers, reviewer=True, committee=True)
    ratings = [
        await rated_trip(
            client, sessionmaker, rider, driver, 3, ended_ago=timedelta(minutes=60 - i)
        )
        for i in range(5)
    ]
    for rating in ratings:
        response = await client.post(
            f"/v1/ratings/{rating['id']}/appeal",
            json={"statement": "The traffic was not my doing."},
            headers=driver.headers,
        )
        assert response.status_code == 201, response.text
    closes = (utcnow() + timedelta(days=2)).isoformat()
    terms = (await client.get("/v1/agreements/current")).json()["terms"]
    for i in range(5):
        terms["fares"]["standard"]["per_km"] = f"1.{10 + i}"
        response = await client.post(
            "/v1/proposals",
            json={"title": f"P{i}", "rationale": "r", "terms": terms, "voting_closes_at": closes},
            headers=driver.headers,
        )
        assert response.status_code == 201, response.text
    for path, headers in (
        ("/v1/drivers/me/ratings", driver.headers),
        ("/v1/appeals", driver.headers),
        ("/v1/proposals", {}),
    ):
        everything = (await client.get(path, headers=headers)).json()
        assert len(everything) == 5, path
        pages = await walk(client, path, headers, limit=2)
        assert [len(page) for page in pages] == [2, 2, 1], path
        assert [item["id"] for page in pages for item in page] == [i["id"] for i in everything]
        # A page exactly full is the last one when nothing follows it.
        assert [len(page) for page in await walk(client, path, headers, limit=5)] == [5]
    # The ratings come newest trip first, as before paging.
    assert [
        r["id"] for r in (await client.get("/v1/drivers/me/ratings", headers=driver.headers)).json()
    ] == [r["id"] for r in reversed(ratings)]


async def test_the_default_page_is_50_and_a_page_holds_at_most_500(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    for _ in range(26):  # 52 audit entries: inactive then active again, each audited
        for status in ("inactive", "active"):
            response = await client.post(
                f"/v1/drivers/{driver.id}/status",
                json={"status": status, "reason": "paging test"},
                headers=admin_headers,
            )
            assert response.status_code == 200, response.text
    # The audit log keeps its own bounds (1-1000, default 100), and pages by cursor too.
    audit = await client.get("/v1/audit", params={"limit": 50})
    assert len(audit.json()) == 50 and "x-next-cursor" in audit.headers
    rest = await client.get("/v1/audit", params={"cursor": audit.headers["x-next-cursor"]})
    assert [e["seq"] for e in rest.json()] == [
        e["seq"] for e in (await client.get("/v1/audit")).json()
    ][50:]
    for path, limit in (("/v1/proposals", 501), ("/v1/appeals", 0), ("/v1/audit", 1001)):
        response = await client.get(path, params={"limit": limit}, headers=driver.headers)
        assert response.status_code == 422, (path, response.text)
        assert [e["field"] for e in response.json()["errors"]] == ["query.limit"]


async def test_bad_cursors_and_out_of_range_integers_are_422_naming_the_parameter(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers, reviewer=True)
    bad_queries = [
        ("/v1/audit", {"after": "9223372036854775808"}, "query.after"),
        ("/v1/audit", {"after": "-1"}, "query.after"),
        ("/v1/audit", {"after": "1e3"}, "query.after"),
        ("/v1/audit", {"limit": "99999999999999999999999"}, "query.limit"),
        ("/v1/proposals", {"limit": "-5"}, "query.limit"),
        ("/v1/proposals", {"cursor": "not a cursor!"}, "query.cursor"),
        ("/v1/proposals", {"cursor": "bm90LWpzb24"}, "query.cursor"),  # base64 of "not-json"
        ("/v1/proposals", {"cursor": "x" * 600}, "query.cursor"),
        ("/v1/appeals", {"cursor": "WyJhdWRpdCIsM10"}, "query.cursor"),  # ["audit",3]
        ("/v1/drivers/me/ratings", {"cursor": "WyJyYXRpbmdzIiwxXQ"}, "query.cursor"),
        ("/v1/agreements/9223372036854775808", {}, "path.version"),
    ]
    # Made up: a well-formed key of the right list, but not a cursor the service gave (it was
    # taken as where to start). And a real cursor altered by one character.
    made_up = (
        base64.urlsafe_b64encode(
            json.dumps(["proposals", "2999-01-01T00:00:00+00:00", str(uuid.uuid4())]).encode()
        )
        .decode()
        .rstrip("=")
    )
    for forged in (made_up, made_up + "A" * 22):
        bad_queries.append(("/v1/proposals", {"cursor": forged}, "query.cursor"))
    for status in ("inactive", "active"):  # two audit entries beside the founding version's
        response = await client.post(
            f"/v1/drivers/{driver.id}/status",
            json={"status": status, "reason": "paging test"},
            headers=admin_headers,
        )
        assert response.status_code == 200, response.text
    given = (await client.get("/v1/audit", params={"limit": 1})).headers["x-next-cursor"]
    altered = given[:-1] + ("A" if given[-1] != "A" else "B")
    bad_queries.append(("/v1/audit", {"cursor": altered}, "query.cursor"))
    for path, params, field in bad_queries:
        response = await client.get(path, params=params, headers=driver.headers)
        assert response.status_code == 422, (path, params, response.text)
        body = response.json()
        assert body["type"] == "validation_error"
        assert [e["field"] for e in body["errors"]] == [field], (path, params, body)
    # The largest seq a bigint holds is a fine (empty) page.
    response = await client.get("/v1/audit", params={"after": str(2**63 - 1)})
    assert response.status_code == 200 and response.json() == []


async def test_positions_are_strict_numbers_over_http(client: AsyncClient) -> None:
    rider = await make_rider(client)
    for bad in ("45.5", True, None, [45.5], {"v": 45.5}):
        for field in ("lat", "lon"):
            pickup: dict[str, Any] = {**DOWNTOWN, field: bad}
            response = await client.post(
                "/v1/quotes",
                json={"pickup": pickup, "dropoff": DOWNTOWN},
                headers=rider.headers,
            )
            assert response.status_code == 422, (field, bad, response.text)
            assert [e["field"] for e in response.json()["errors"]] == [f"pickup.{field}"]
    # An integer is a number: 45 degrees is a latitude (outside the area here, but a number).
    response = await client.post(
        "/v1/quotes",
        json={"pickup": {"lat": 45, "lon": -73}, "dropoff": DOWNTOWN},
        headers=rider.headers,
    )
    assert response.json()["type"] == "out_of_service_area"
