"""The authorization matrix of the account endpoints: each endpoint × each kind of caller."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from tests.builders import make_driver, make_rider

DRIVER_BODY = {
    "name": "New Member",
    "member_number": "N-1",
    "vehicle": {"plate": "NEW 1", "seats": 4, "wheelchair_accessible": False},
}

# (method, path, body, expected status per caller)
MATRIX = [
    (
        "POST",
        "/v1/riders",
        {"name": "R"},
        {"anonymous": 201, "bad_token": 201, "rider": 201, "driver": 201, "admin": 201},
    ),
    (
        "POST",
        "/v1/drivers",
        DRIVER_BODY,
        {"anonymous": 401, "bad_token": 401, "rider": 403, "driver": 403, "admin": 201},
    ),
    (
        "GET",
        "/v1/drivers/me",
        None,
        {"anonymous": 401, "bad_token": 401, "rider": 403, "driver": 200, "admin": 403},
    ),
]


@pytest.mark.parametrize("caller", ["anonymous", "bad_token", "rider", "driver", "admin"])
@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX)
async def test_authorization_matrix(
    client: AsyncClient,
    admin_headers: dict[str, str],
    caller: str,
    method: str,
    path: str,
    body: dict[str, object] | None,
    expected: dict[str, int],
) -> None:
    headers: dict[str, str] = {}
    if caller == "bad_token":
        headers = {"Authorization": "Bearer not-a-real-token"}
    elif caller == "rider":
        headers = (await make_rider(client)).headers
    elif caller == "driver":
        headers = (await make_driver(client, admin_headers)).headers
    elif caller == "admin":
        headers = admin_headers
    response = await client.request(method, path, json=body, headers=headers)
    assert response.status_code == expected[caller], response.text
    if response.status_code >= 400:
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["status"] == response.status_code
        assert problem["type"] in {"unauthorized", "forbidden"}


@pytest.mark.parametrize(
    "authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Token abc", ""]
)
async def test_malformed_authorization_header_is_401(
    client: AsyncClient, authorization: str
) -> None:
    response = await client.get("/v1/drivers/me", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json()["type"] == "unauthorized"
