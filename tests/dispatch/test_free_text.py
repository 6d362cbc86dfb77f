"""Free text, validated once for every field: control characters (NUL first of all), lone
surrogates and over-long text are `422` naming the field; text is stored NFC-normalised."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from httpx import AsyncClient

from coop.db import utcnow
from tests.builders import DOWNTOWN, PLATEAU, make_driver, make_rider, request_trip

NUL = "a\\u0000b"  # as a client writes it in JSON
ESCAPE = "a\\u001bb"
LONE_SURROGATE = "a\\ud800b"
CARRIAGE_RETURN = "a\\rb"


def _raw(body: dict[str, object], field: str, raw_value: str) -> bytes:
    """The JSON body with `field`'s value spliced in as written (escapes and all)."""
    marker = "@@VALUE@@"
    text = json.dumps({**body, field: marker})
    return text.replace(f'"{marker}"', f'"{raw_value}"').encode()


def _assert_names(response_status: int, body: dict[str, object], field: str) -> None:
    assert response_status == 422, body
    assert body["type"] == "validation_error"
    errors = body["errors"]
    assert isinstance(errors, list)
    assert [error["field"] for error in errors] == [field], errors


async def test_bad_text_in_every_free_text_field_is_422_naming_it(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    reviewer = await make_driver(client, admin_headers, reviewer=True, committee=True)
    some_id = uuid.uuid4()
    closes = (utcnow() + timedelta(days=3)).isoformat()
    terms = (await client.get("/v1/agreements/current")).json()["terms"]
    # (who, path, a valid body, the free-text fields of that body)
    cases: list[tuple[dict[str, str], str, dict[str, object], list[str]]] = [
        ({}, "/v1/riders", {"name": "Rosa"}, ["name"]),
        (
            admin_headers,
            "/v1/drivers",
            {
                "name": "Dana",
                "member_number": "M-1",
                "vehicle": {"plate": "ABC 123", "seats": 4},
            },
            ["name", "member_number"],
        ),
        (
            admin_headers,
            f"/v1/drivers/{reviewer.id}/status",
            {"status": "inactive", "reason": "r"},
            ["reason"],
        ),
        (rider.headers, f"/v1/trips/{some_id}/cancel", {"reason": "r"}, ["reason"]),
        (rider.headers, f"/v1/trips/{some_id}/rating", {"stars": 4, "comment": "c"}, ["comment"]),
        (reviewer.headers, f"/v1/ratings/{some_id}/appeal", {"statement": "s"}, ["statement"]),
        (
            reviewer.headers,
            f"/v1/appeals/{some_id}/decision",
            {"outcome": "rating_stands", "reason": "r"},
            ["reason"],
        ),
        (admin_headers, f"/v1/support-cases/{some_id}/close", {"note": "n"}, ["note"]),
        (
            reviewer.headers,
            "/v1/proposals",
            {"title": "t", "rationale": "r", "terms": terms, "voting_closes_at": closes},
            ["title", "rationale"],
        ),
    ]
    for headers, path, body, fields in cases:
        for field in fields:
            for bad in (NUL, ESCAPE, LONE_SURROGATE, CARRIAGE_RETURN, "x" * 20_001):
                response = await client.post(
                    path,
                    content=_raw(body, field, bad),
                    headers={**headers, "Content-Type": "application/json"},
                )
                assert response.status_code == 422, (path, field, bad[:10], response.text)
                _assert_names(response.status_code, response.json(), field)
    # Nothing was written by any of these.
    assert (await client.get("/v1/proposals")).json() == []


async def test_text_is_stored_nfc_with_newlines_and_tabs_where_several_lines_make_sense(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    # "Zoé" typed with a combining accent is stored as the one-code-point "é".
    decomposed = "Zoe\u0301 Lafleur"
    driver = await make_driver(client, admin_headers, name=f"  {decomposed} ")
    me = (await client.get("/v1/drivers/me", headers=driver.headers)).json()
    assert me["name"] == "Zo\u00e9 Lafleur"
    # A name is one line: a newline or a tab in it is refused.
    for one_line in ("Rosa\\nRider", "Rosa\\tRider"):
        response = await client.post(
            "/v1/riders",
            content=_raw({}, "name", one_line),
            headers={"Content-Type": "application/json"},
        )
        _assert_names(response.status_code, response.json(), "name")
    # A reason may have several lines and tabs; its limit counts normalised characters.
    rider = await make_rider(client)
    trip = await request_trip(client, rider, pickup=DOWNTOWN, dropoff=PLATEAU)
    reason = "Plus besoin.\n\tMerci" + "e\u0301" * 480  # 500 characters once composed
    response = await client.post(
        f"/v1/trips/{trip['id']}/cancel", json={"reason": reason}, headers=rider.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["cancel_reason"] == "Plus besoin.\n\tMerci" + "\u00e9" * 480
    # Blank is no text at all where text is required.
    response = await client.post("/v1/riders", json={"name": " \n "})
    _assert_names(response.status_code, response.json(), "name")
    # And a number is not text (no coercion).
    response = await client.post("/v1/riders", json={"name": 42})
    _assert_names(response.status_code, response.json(), "name")
