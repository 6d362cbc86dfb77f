"""Every kind of error answers RFC 9457 problem details, and none leaks a stack trace."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from coop.observability import configure_logging
from tests.builders import assigned_trip, live_server, make_driver, make_rider

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def assert_problem(response: Any, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert PROBLEM_KEYS <= set(body)
    assert body["status"] == status
    assert body["type"] == type_
    assert "Traceback" not in response.text
    return body


async def test_validation_error_names_each_bad_field(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/drivers",
        json={"name": "", "member_number": "X", "vehicle": {"plate": "A", "seats": 0}, "typo": 1},
        headers=admin_headers,
    )
    body = assert_problem(response, 422, "validation_error")
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"name", "vehicle.seats", "typo"}
    assert all(error["reason"] for error in body["errors"])


async def test_malformed_json_is_a_problem(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/riders", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "validation_error")


async def test_unknown_path_is_404_problem(client: AsyncClient) -> None:
    body = assert_problem(await client.get("/v1/nothing-here"), 404, "not_found")
    assert "/v1/nothing-here" in body["detail"]


async def test_wrong_method_is_405_problem(client: AsyncClient) -> None:
    response = await client.delete("/v1/riders")
    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


async def test_unauthorized_and_forbidden_are_problems(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    assert_problem(await client.get("/v1/drivers/me"), 401, "unauthorized")
    driver = await make_driver(client, admin_headers)
    response = await client.post("/v1/drivers", json={}, headers=driver.headers)
    assert_problem(response, 403, "forbidden")


async def test_unexpected_exception_is_500_with_correlation_id(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode() -> None:
        raise RuntimeError("secret internal detail")

    app.add_api_route("/v1/_explode", explode)
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as http:
        with caplog.at_level(logging.ERROR, logger="coop.errors"):
            response = await http.get("/v1/_explode", headers={"X-Request-ID": "req-abc-123"})
    body = assert_problem(response, 500, "internal_error")
    assert body["correlation_id"] == "req-abc-123"
    assert "secret internal detail" not in response.text
    # The operator finds the failure in the log under the same correlation id.
    assert any(
        getattr(record, "correlation_id", None) == "req-abc-123" and record.exc_info
        for record in caplog.records
    )


async def test_a_real_database_failure_is_logged_without_parameters_or_body(
    app: FastAPI, engine: AsyncEngine
) -> None:
    """A real failure on a real server: the database refuses a rider's name (a constraint added
    for the test), so the insert fails with an error whose message quotes the row. The client gets
    a 500 with its correlation id, in the body and in `X-Request-ID`; the log line has that id,
    the route and the exception's type, and neither the name nor anything of the body."""
    secret = "Zoé Secretname"
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("INFO", json_logs=True, stream=stream)
    async with engine.begin() as connection:
        await connection.execute(
            text("ALTER TABLE rider ADD CONSTRAINT test_refuse CHECK (name <> 'Zoé Secretname')")
        )
    try:
        async with live_server(app) as base_url, httpx.AsyncClient(base_url=base_url) as http:
            response = await http.post(
                "/v1/riders", json={"name": secret}, headers={"X-Request-ID": "req-db-fail-1"}
            )
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("ALTER TABLE rider DROP CONSTRAINT test_refuse"))
        root.handlers = saved[0]
        root.setLevel(saved[1])
    body = assert_problem(response, 500, "internal_error")
    assert body["correlation_id"] == "req-db-fail-1"
    assert response.headers["x-request-id"] == "req-db-fail-1"
    log = stream.getvalue()
    assert "Secretname" not in log
    lines = [json.loads(row) for row in log.splitlines()]
    [line] = [row for row in lines if row["level"] == "ERROR"]
    assert line["correlation_id"] == line["request_id"] == "req-db-fail-1"
    assert line["route"] == "/v1/riders" and line["method"] == "POST"
    assert line["exception_type"].endswith("IntegrityError")
    assert "IntegrityError" in line["exc_info"]  # the stack and the type, for the operator
    assert "check constraint" not in log  # the database's message is withheld too


async def test_every_response_carries_a_request_id(client: AsyncClient) -> None:
    response = await client.get("/healthz")
    assert len(response.headers["x-request-id"]) >= 16


async def test_a_failed_flush_before_a_move_is_an_outage_only_when_the_database_is_away(
    served_app: tuple[FastAPI, str], admin_headers: dict[str, str]
) -> None:
    """The positions a worker holds go in before a move; PostgreSQL away is an outage (the move
    goes on with what is stored), anything else a bug: a 500 with its correlation id, never a
    warning that lets it pass."""
    app, base_url = served_app
    ingest = app.state.locations

    async def database_away() -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    async def a_bug() -> None:
        raise ZeroDivisionError("a bug in the flush")

    async with AsyncClient(base_url=base_url) as client:
        rider = await make_rider(client)
        driver = await make_driver(client, admin_headers)
        trip = await assigned_trip(app, client, rider, driver)
        ingest.flush = a_bug
        broken = await client.post(f"/v1/trips/{trip['id']}/arrived", headers=driver.headers)
        assert broken.status_code == 500, broken.text
        assert broken.json()["type"] == "internal_error"
        ingest.flush = database_away
        moved = await client.post(f"/v1/trips/{trip['id']}/arrived", headers=driver.headers)
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == "arrived"
