"""Accounts and tokens: riders, drivers, and what is kept of a token."""

from __future__ import annotations

import hashlib
import uuid

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coop.auth import AuthToken, Role
from tests.builders import make_driver, make_rider


async def test_rider_signs_up_and_gets_a_token(client: AsyncClient, session: AsyncSession) -> None:
    response = await client.post("/v1/riders", json={"name": "Rosa"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "token"}
    uuid.UUID(body["id"])
    assert len(body["token"]) >= 40

    rows = (await session.scalars(select(AuthToken))).all()
    assert len(rows) == 1
    # Only the hash is kept: the token itself is nowhere in the database.
    assert rows[0].token_hash == hashlib.sha256(body["token"].encode()).digest()
    assert rows[0].role is Role.rider
    assert str(rows[0].subject_id) == body["id"]


async def test_tokens_are_unique(client: AsyncClient) -> None:
    tokens = {(await make_rider(client)).token for _ in range(5)}
    assert len(tokens) == 5


async def test_admin_registers_a_driver_who_reads_themself(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    payload = {
        "name": "Amira Haddad",
        "member_number": "UNION-0042",
        "committee": True,
        "vehicle": {"plate": "ABC 123", "seats": 4, "wheelchair_accessible": True},
    }
    created = await client.post("/v1/drivers", json=payload, headers=admin_headers)
    assert created.status_code == 201, created.text
    token = created.json()["token"]

    me = await client.get("/v1/drivers/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json() == {
        "id": created.json()["id"],
        "name": "Amira Haddad",
        "member_number": "UNION-0042",
        "status": "active",
        "committee": True,
        "reviewer": False,
        "simulated": False,
        "vehicle": {
            "plate": "ABC 123",
            "seats": 4,
            "wheelchair_accessible": True,
            # The car's register (docs/jurisdiction.md): none recorded at this registration.
            **dict.fromkeys(
                ("vin", "make", "model", "year", "colour", "owner", "odometer_km"), None
            ),
            "inspection_due_on": None,
        },
    }


async def test_duplicate_member_number_is_409_and_writes_nothing(
    client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    await make_driver(client, admin_headers, member_number="UNION-7")
    again = await client.post(
        "/v1/drivers",
        json={
            "name": "Someone Else",
            "member_number": "UNION-7",
            "vehicle": {"plate": "XYZ 9", "seats": 4},
        },
        headers=admin_headers,
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["type"] == "duplicate_member_number"
    tokens = (await session.scalars(select(AuthToken))).all()
    assert len(tokens) == 1  # the failed registration left no token behind


async def test_bearer_scheme_is_case_insensitive(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    response = await client.get(
        "/v1/drivers/me", headers={"Authorization": f"bearer {driver.token}"}
    )
    assert response.status_code == 200
