"""Every route that takes a body answers a body that is not a JSON document the same documented
way (docs/protocol.md, Errors): `422 validation_error`, never an undocumented status."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from coop.errors import NOT_JSON_REASON, NOT_UTF8_REASON
from riders.models import Rider


@dataclass(frozen=True)
class BadBody:
    name: str
    content: bytes
    content_type: str | None
    # Bodies that cannot be read are refused before any dependency (token, resource) runs, so
    # even an anonymous caller gets the 422; the others are judged after the route's checks.
    refused_unread: bool


BAD_BODIES = [
    BadBody("not UTF-8", b"\xb1$J\xf3\x9e,", "application/json", True),
    BadBody("not UTF-8, no content type", b"\xb1$J\xf3\x9e,", None, False),
    BadBody("JSON without a content type", b'{"name": "Rosa"}', None, False),
    BadBody("not JSON", b'{"name": ', "application/json", True),
    BadBody("JSON as text/plain", b'{"name": "Rosa"}', "text/plain", False),
    BadBody("a form", b"name=Rosa", "application/x-www-form-urlencoded", False),
    BadBody("a JSON array", b"[1, 2]", "application/json", False),
    BadBody("a JSON string", b'"hello"', "application/json", False),
    BadBody("an unknown field", b'{"surely_not_a_field": 1}', "application/json", False),
]


# The routes whose body is a file, not a JSON document, and the types they take.
FILE_BODIES = {("put", "/v1/drivers/me/photo"): {"image/jpeg", "image/png"}}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    template: str
    documented: frozenset[int]


def _example_path(template: str, operation: dict[str, Any]) -> str:
    """The template with each path parameter filled with a well-formed value of its type."""
    kinds = {
        parameter["name"]: parameter.get("schema", {})
        for parameter in operation.get("parameters", [])
        if parameter.get("in") == "path"
    }

    def value(match: re.Match[str]) -> str:
        schema = kinds.get(match.group(1), {})
        if schema.get("format") == "date":
            return "2026-11-30"
        if schema.get("type") == "integer":
            return "1"
        return str(uuid.uuid4())

    return re.sub(r"\{([^}]+)\}", value, template)


def operations_with_a_body(app: FastAPI) -> list[Operation]:
    found = []
    for template, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody")
            if body is None:
                continue
            if set(body["content"]) == FILE_BODIES.get((method, template)):
                continue  # a file as the body: its own bad bodies in tests/drivers/test_photo.py
            assert set(body["content"]) == {"application/json"}, (method, template)
            documented = frozenset(int(status) for status in operation["responses"])
            found.append(
                Operation(method, _example_path(template, operation), template, documented)
            )
    return found


def test_the_api_has_routes_with_bodies(app: FastAPI) -> None:
    operations = operations_with_a_body(app)
    assert len(operations) >= 13
    assert all(422 in operation.documented for operation in operations)


@pytest.mark.parametrize("bad", BAD_BODIES, ids=lambda bad: bad.name)
async def test_every_route_with_a_body_answers_422(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], bad: BadBody
) -> None:
    for operation in operations_with_a_body(app):
        callers = [admin_headers, {}] if bad.refused_unread else [admin_headers]
        for auth in callers:
            headers = dict(auth)
            if bad.content_type is not None:
                headers["Content-Type"] = bad.content_type
            response = await client.request(
                operation.method.upper(), operation.path, content=bad.content, headers=headers
            )
            where = f"{operation.method.upper()} {operation.template} ({bad.name}): "
            assert response.status_code in operation.documented, where + response.text
            assert response.headers["content-type"] == "application/problem+json", where
            if bad.refused_unread:
                assert response.status_code == 422, where + response.text
            if response.status_code == 422:
                problem = response.json()
                assert problem["type"] == "validation_error", where + response.text
                assert problem["errors"], where + response.text


async def test_the_reasons_say_what_is_wrong(client: AsyncClient) -> None:
    not_utf8 = await client.post(
        "/v1/riders", content=b"\xb1$J\xf3\x9e,", headers={"Content-Type": "application/json"}
    )
    assert not_utf8.json()["errors"] == [{"field": "body", "reason": NOT_UTF8_REASON}]
    as_text = await client.post(
        "/v1/riders", content=b'{"name": "Rosa"}', headers={"Content-Type": "text/plain"}
    )
    assert as_text.status_code == 422
    assert as_text.json()["errors"] == [{"field": "body", "reason": NOT_JSON_REASON}]
    # A body needs its Content-Type: without one, JSON is not guessed.
    bare = await client.post("/v1/riders", content=b'{"name": "Rosa"}')
    assert bare.status_code == 422
    assert bare.json()["errors"] == [{"field": "body", "reason": NOT_JSON_REASON}]
    # A charset or a +json media type is JSON.
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        headers = {"Content-Type": content_type}
        response = await client.post("/v1/riders", content=b'{"name": "Rosa"}', headers=headers)
        assert response.status_code == 201, (content_type, response.text)


async def test_nothing_is_written_by_a_refused_body(
    client: AsyncClient, session: AsyncSession
) -> None:
    async def riders() -> int:
        return (await session.execute(select(func.count()).select_from(Rider))).scalar_one()

    before = await riders()
    for bad in BAD_BODIES:
        headers = {"Content-Type": bad.content_type} if bad.content_type else {}
        response = await client.post("/v1/riders", content=bad.content, headers=headers)
        assert response.status_code == 422, (bad.name, response.text)
    assert await riders() == before
    assert (await client.post("/v1/riders", json={"name": "Rosa"})).status_code == 201
    assert await riders() == before + 1
