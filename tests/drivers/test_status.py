"""A driver's status changes only by an admin's recorded decision with a written reason."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from coop.audit import AuditEntry
from drivers.models import Driver, DriverStatus, DriverStatusChange
from tests.builders import make_driver, make_rider

REASON = "Licence suspended by the SAAQ until 2027-01-10; member asked to pause."


async def set_status(
    client: AsyncClient, headers: dict[str, str], driver_id: uuid.UUID, body: dict[str, Any]
) -> Any:
    return await client.post(f"/v1/drivers/{driver_id}/status", json=body, headers=headers)


async def counts(session: AsyncSession) -> tuple[int, int]:
    changes = await session.scalar(select(func.count()).select_from(DriverStatusChange))
    audited = await session.scalar(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.kind == "driver_status_change")
    )
    return int(changes or 0), int(audited or 0)


async def test_an_admin_changes_a_status_with_a_written_reason(
    client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    driver = await make_driver(client, admin_headers, name="Dana Driver")

    response = await set_status(
        client, admin_headers, driver.id, {"status": "inactive", "reason": f"  {REASON} "}
    )

    assert response.status_code == 200, response.text
    change = response.json()
    assert change["driver_id"] == str(driver.id)
    assert (change["from_status"], change["to_status"]) == ("active", "inactive")
    assert change["reason"] == REASON
    me = await client.get("/v1/drivers/me", headers=driver.headers)
    assert me.json()["status"] == "inactive"

    entry = (
        await session.scalars(select(AuditEntry).where(AuditEntry.kind == "driver_status_change"))
    ).one()
    assert entry.subject == f"driver_status_change:{change['id']}"
    assert entry.content == {
        "status_change_id": change["id"],
        "from_status": "active",
        "to_status": "inactive",
    }
    published = json.dumps((await client.get("/v1/audit")).json())
    for personal in (REASON, "SAAQ", "Dana", str(driver.id), driver.extra["member_number"]):
        assert personal not in published

    back = await set_status(
        client, admin_headers, driver.id, {"status": "active", "reason": "Licence reinstated"}
    )
    assert back.status_code == 200
    history = await client.get(f"/v1/drivers/{driver.id}/status-changes", headers=admin_headers)
    assert [(c["from_status"], c["to_status"]) for c in history.json()] == [
        ("active", "inactive"),
        ("inactive", "active"),
    ]
    assert await counts(session) == (2, 2)


@pytest.mark.parametrize(
    "body",
    [
        {"status": "inactive"},
        {"status": "inactive", "reason": ""},
        {"status": "inactive", "reason": "   \n "},
        {"status": "inactive", "reason": "x" * 2001},
        {"status": "banned", "reason": "Because"},
        {"reason": "Because"},
        {"status": "inactive", "reason": "Because", "notify": False},
    ],
)
async def test_a_status_change_needs_a_valid_status_and_a_written_reason(
    client: AsyncClient,
    admin_headers: dict[str, str],
    session: AsyncSession,
    body: dict[str, Any],
) -> None:
    driver = await make_driver(client, admin_headers)
    response = await set_status(client, admin_headers, driver.id, body)
    assert response.status_code == 422
    assert response.json()["type"] == "validation_error"
    stored = await session.get(Driver, driver.id)
    assert stored is not None and stored.status is DriverStatus.active
    assert await counts(session) == (0, 0)


@pytest.mark.parametrize("caller", ["anonymous", "rider", "driver", "reviewer", "committee"])
async def test_only_an_admin_changes_a_status(
    client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession, caller: str
) -> None:
    driver = await make_driver(client, admin_headers)
    headers: dict[str, str] = {}
    if caller == "rider":
        headers = (await make_rider(client)).headers
    elif caller == "driver":
        headers = driver.headers  # not even about themself
    elif caller == "reviewer":
        headers = (await make_driver(client, admin_headers, reviewer=True)).headers
    elif caller == "committee":
        headers = (await make_driver(client, admin_headers, committee=True)).headers
    response = await set_status(
        client, headers, driver.id, {"status": "inactive", "reason": REASON}
    )
    assert response.status_code == (401 if caller == "anonymous" else 403)
    history = await client.get(f"/v1/drivers/{driver.id}/status-changes", headers=headers)
    assert history.status_code == (401 if caller == "anonymous" else 403)
    assert await counts(session) == (0, 0)


async def test_an_unknown_driver_is_404(client: AsyncClient, admin_headers: dict[str, str]) -> None:
    response = await set_status(
        client, admin_headers, uuid.uuid4(), {"status": "inactive", "reason": REASON}
    )
    assert response.status_code == 404
    assert response.json()["type"] == "not_found"


async def test_setting_the_status_a_driver_has_is_409(
    client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    driver = await make_driver(client, admin_headers)
    response = await set_status(
        client, admin_headers, driver.id, {"status": "active", "reason": REASON}
    )
    assert response.status_code == 409
    assert response.json()["type"] == "status_unchanged"
    assert await counts(session) == (0, 0)


async def test_two_admins_at_once_record_one_change(
    client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    driver = await make_driver(client, admin_headers)
    body = {"status": "inactive", "reason": REASON}
    first, second = await asyncio.gather(
        set_status(client, admin_headers, driver.id, body),
        set_status(client, admin_headers, driver.id, body),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    assert await counts(session) == (1, 1)
