"""The qualification register: a driver and a car the law requires facts of, recorded by an
operator; whether they may carry riders today, what is missing, what lapses soon; never a status
change, and never from a rating."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from coop.audit import AuditEntry
from coop.settings import Settings
from coop.state import CoreState, state_of
from drivers.models import Driver, DriverQualification, DriverRegisterEntry, DriverStatus
from server.app import create_app
from tests.builders import make_driver

# Noon in Montréal on 1 March 2027: the law's day is 2027-03-01.
NOW = datetime(2027, 3, 1, 17, 0, tzinfo=UTC)
TODAY = date(2027, 3, 1)
FUTURE, INVALID = "dated_in_the_future", "validation_error"
ALL_ITEMS = [
    "licence_number",
    "training_certificate",
    "record_check",
    "authorization",
    "vehicle_identity",
    "mechanical_inspection",
]


def qualification(**changes: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "licence_number": "L1234-567890-12",
        "training_certificate_on": "2026-05-04",
        "record_check_on": "2026-01-15",
        "record_check_clear": True,
        "authorization_expires_on": "2028-06-30",
    }
    facts.update(changes)
    return facts


def car(**changes: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "plate": "FXK 123",
        "seats": 4,
        "wheelchair_accessible": False,
        "vin": "2HGFC2F59JH512345",
        "make": "Honda",
        "model": "Civic",
        "year": 2018,
        "colour": "Bleu",
        "owner": "Dana Driver",
        "odometer_km": 120_000,
        "inspection_due_on": "2027-09-30",
    }
    facts.update(changes)
    return facts


@pytest.fixture
def at_noon(app: FastAPI) -> datetime:
    state_of(app, CoreState).clock = lambda: NOW
    return NOW


async def register(
    client: AsyncClient, admin_headers: dict[str, str], **body: Any
) -> tuple[uuid.UUID, dict[str, str]]:
    payload = {"name": "Dana Driver", "member_number": f"Q-{uuid.uuid4().hex[:8]}", **body}
    response = await client.post("/v1/drivers", json=payload, headers=admin_headers)
    assert response.status_code == 201, response.text
    created = response.json()
    return uuid.UUID(created["id"]), {"Authorization": f"Bearer {created['token']}"}


async def standing(client: AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/v1/drivers/me/qualification", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_member_registered_with_every_fact_may_carry_riders(
    client: AsyncClient, admin_headers: dict[str, str], at_noon: datetime
) -> None:
    driver_id, headers = await register(
        client, admin_headers, vehicle=car(), qualification=qualification()
    )
    mine = await standing(client, headers)
    assert mine["eligible"] is True
    assert (mine["missing"], mine["expiring"]) == ([], [])
    assert (mine["jurisdiction"], mine["today"]) == ("quebec", "2027-03-01")
    assert [item["key"] for item in mine["items"]] == ALL_ITEMS
    through = {item["key"]: item["valid_through"] for item in mine["items"]}
    # A certificate is valid for the profile's days from the day it was issued.
    assert through["record_check"] == str(date(2026, 1, 15) + timedelta(days=729))
    assert through["authorization"] == "2028-06-30"
    assert through["licence_number"] is None
    assert mine["items"][2]["clause"].startswith("T-11.2")
    assert mine["qualification"]["licence_number"] == "L1234-567890-12"
    operator = await client.get(f"/v1/drivers/{driver_id}/qualification", headers=admin_headers)
    assert operator.json() == mine
    me = await client.get("/v1/drivers/me", headers=headers)
    assert me.json()["vehicle"]["vin"] == "2HGFC2F59JH512345"


async def test_a_member_registered_without_them_is_registered_and_told_what_is_missing(
    client: AsyncClient, admin_headers: dict[str, str], at_noon: datetime, session: AsyncSession
) -> None:
    driver = await make_driver(client, admin_headers, qualified=False)
    mine = await standing(client, driver.headers)
    assert mine["eligible"] is False
    assert mine["missing"] == ALL_ITEMS
    assert mine["qualification"] is None
    names = {item["key"]: item["name"] for item in mine["items"]}
    assert names["record_check"]["fr"] == "Vérification des antécédents judiciaires"
    # Not being qualified is the law's condition for driving, not a decision about the member.
    assert await session.scalar(select(Driver.status).where(Driver.id == driver.id)) == (
        DriverStatus.active
    )


@pytest.mark.parametrize(
    ("facts", "vehicle", "missing"),
    [
        # The last valid day still counts; the day after does not.
        (qualification(authorization_expires_on="2027-03-01"), car(), []),
        (qualification(authorization_expires_on="2027-02-28"), car(), ["authorization"]),
        # A check is valid 730 days: issued 2025-03-02, its last day is 2027-03-01.
        (qualification(record_check_on="2025-03-02"), car(), []),
        (qualification(record_check_on="2025-03-01"), car(), ["record_check"]),
        (qualification(record_check_clear=False), car(), ["record_check"]),
        (qualification(licence_number=None), car(), ["licence_number"]),
        # A car 4 years old or more, or with 80,000 km or more, needs its inspection.
        (qualification(), car(inspection_due_on="2027-02-28"), ["mechanical_inspection"]),
        (qualification(), car(inspection_due_on=None), ["mechanical_inspection"]),
        (qualification(), car(year=2025, odometer_km=79_999, inspection_due_on=None), []),
        (
            qualification(),
            car(year=2025, odometer_km=80_000, inspection_due_on=None),
            ["mechanical_inspection"],
        ),
        # By model year: in 2027 a 2024 car is 3 years old, a 2023 car 4.
        (qualification(), car(year=2024, odometer_km=10, inspection_due_on=None), []),
        (
            qualification(),
            car(year=2023, odometer_km=10, inspection_due_on=None),
            ["mechanical_inspection"],
        ),
        (qualification(), car(vin=None), ["vehicle_identity"]),
        (qualification(), car(owner=None, year=None), ["vehicle_identity"]),
    ],
)
async def test_each_item_counts_by_its_rule(
    client: AsyncClient,
    admin_headers: dict[str, str],
    at_noon: datetime,
    facts: dict[str, Any],
    vehicle: dict[str, Any],
    missing: list[str],
) -> None:
    _, headers = await register(client, admin_headers, vehicle=vehicle, qualification=facts)
    mine = await standing(client, headers)
    assert mine["missing"] == missing
    assert mine["eligible"] is (missing == [])


async def test_items_lapsing_within_the_warning_are_named_and_listed_for_operators(
    client: AsyncClient, admin_headers: dict[str, str], at_noon: datetime
) -> None:
    soon, soon_headers = await register(
        client,
        admin_headers,
        vehicle=car(inspection_due_on="2027-03-20"),
        qualification=qualification(authorization_expires_on="2027-03-08"),
    )
    later, _ = await register(client, admin_headers, vehicle=car(), qualification=qualification())
    mine = await standing(client, soon_headers)
    assert mine["eligible"] is True
    assert mine["expiring"] == ["authorization", "mechanical_inspection"]

    listed = await client.get(
        "/v1/drivers/qualifications/expiring?within_days=30", headers=admin_headers
    )
    assert listed.status_code == 200, listed.text
    assert [(row["driver_id"], row["item"], row["valid_through"]) for row in listed.json()] == [
        (str(soon), "authorization", "2027-03-08"),
        (str(soon), "mechanical_inspection", "2027-03-20"),
    ]
    week = await client.get(
        "/v1/drivers/qualifications/expiring?within_days=7", headers=admin_headers
    )
    assert [row["item"] for row in week.json()] == ["authorization"]
    assert str(later) not in json.dumps(listed.json())
    for bad in ("-1", "400", "soon"):
        refused = await client.get(
            f"/v1/drivers/qualifications/expiring?within_days={bad}", headers=admin_headers
        )
        assert refused.status_code == 422, bad


async def test_a_renewal_is_recorded_audited_without_its_facts_and_restores_the_driver(
    client: AsyncClient, admin_headers: dict[str, str], at_noon: datetime, session: AsyncSession
) -> None:
    driver_id, headers = await register(
        client,
        admin_headers,
        vehicle=car(inspection_due_on="2027-01-31"),
        qualification=qualification(authorization_expires_on="2027-02-01"),
    )
    assert (await standing(client, headers))["missing"] == [
        "authorization",
        "mechanical_inspection",
    ]
    renewed = await client.put(
        f"/v1/drivers/{driver_id}/qualification",
        json=qualification(authorization_expires_on="2029-02-01"),
        headers=admin_headers,
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["missing"] == ["mechanical_inspection"]
    inspected = await client.put(
        f"/v1/drivers/{driver_id}/vehicle", json=car(), headers=admin_headers
    )
    assert inspected.status_code == 200, inspected.text
    assert inspected.json()["eligible"] is True

    history = {
        str(entry.id): entry
        for entry in await session.scalars(
            select(DriverRegisterEntry).where(DriverRegisterEntry.driver_id == driver_id)
        )
    }
    entries = (
        await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.subject.in_([f"driver_register_entry:{key}" for key in history]))
            .order_by(AuditEntry.seq)
        )
    ).all()
    # The history has the registration's car and qualification and the two renewals; the
    # audit log the renewals (a registration is not audited).
    assert sorted(entry.kind for entry in history.values()) == [
        "qualification",
        "qualification",
        "vehicle",
        "vehicle",
    ]
    assert [entry.kind for entry in entries] == [
        "driver_qualification_recorded",
        "driver_vehicle_recorded",
    ]
    renewal = history[entries[0].content["entry_id"]]
    assert (renewal.kind, renewal.facts["authorization_expires_on"]) == (
        "qualification",
        "2029-02-01",
    )
    assert entries[0].content == {"entry_id": str(renewal.id), "facts": sorted(qualification())}
    published = json.dumps((await client.get("/v1/audit")).json())
    for personal in ("L1234-567890-12", "2HGFC2F59JH512345", "2029-02-01", "Dana", str(driver_id)):
        assert personal not in published
    exported = await client.get("/v1/drivers/me/export", headers=headers)
    assert exported.json()["qualification"]["driver"]["authorization_expires_on"] == "2029-02-01"
    assert exported.json()["qualification"]["vehicle"]["vin"] == "2HGFC2F59JH512345"


@pytest.mark.parametrize(
    ("path", "body", "problem"),
    [
        ("qualification", qualification(record_check_on="2027-03-02"), FUTURE),
        ("qualification", qualification(training_certificate_on="2030-01-01"), FUTURE),
        ("qualification", qualification(record_check_clear=None), "validation_error"),
        ("qualification", qualification(licence_number="L?"), "validation_error"),
        ("qualification", qualification(authorization_expires_on="soon"), "validation_error"),
        ("qualification", {**qualification(), "scan": "data:image/png;base64,AA"}, INVALID),
        ("vehicle", car(vin="2HGFC2F59JH51234O"), "validation_error"),
        ("vehicle", car(vin="2HGFC2F59"), "validation_error"),
        ("vehicle", car(year=1900), "validation_error"),
        ("vehicle", car(odometer_km=-1), "validation_error"),
        ("vehicle", car(make="\u0000"), "validation_error"),
    ],
)
async def test_bad_facts_are_refused_and_nothing_is_recorded(
    client: AsyncClient,
    admin_headers: dict[str, str],
    at_noon: datetime,
    session: AsyncSession,
    path: str,
    body: dict[str, Any],
    problem: str,
) -> None:
    driver_id, headers = await register(
        client, admin_headers, vehicle=car(), qualification=qualification()
    )
    before = await standing(client, headers)
    response = await client.put(f"/v1/drivers/{driver_id}/{path}", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith(problem)
    assert await standing(client, headers) == before
    # Registering with them is refused the same way, and registers nobody.
    count = await session.scalar(select(func.count()).select_from(Driver))
    again = await client.post(
        "/v1/drivers",
        json={
            "name": "Sam",
            "member_number": "Q-bad",
            "vehicle": body if path == "vehicle" else car(),
            "qualification": body if path == "qualification" else qualification(),
        },
        headers=admin_headers,
    )
    assert again.status_code == 422
    assert await session.scalar(select(func.count()).select_from(Driver)) == count


async def test_only_operators_record_or_read_another_drivers_register(
    client: AsyncClient, admin_headers: dict[str, str], at_noon: datetime
) -> None:
    driver_id, headers = await register(client, admin_headers, vehicle=car())
    other = await make_driver(client, admin_headers)
    for method, path, body in (
        ("PUT", f"/v1/drivers/{driver_id}/qualification", qualification()),
        ("PUT", f"/v1/drivers/{driver_id}/vehicle", car()),
        ("GET", f"/v1/drivers/{driver_id}/qualification", None),
        ("GET", "/v1/drivers/qualifications/expiring", None),
    ):
        for caller in (headers, other.headers, {}):
            response = await client.request(method, path, json=body, headers=caller)
            assert response.status_code in (401, 403), (method, path, response.status_code)
    missing = uuid.uuid4()
    for method, path, body in (
        ("PUT", f"/v1/drivers/{missing}/qualification", qualification()),
        ("PUT", f"/v1/drivers/{missing}/vehicle", car()),
        ("GET", f"/v1/drivers/{missing}/qualification", None),
    ):
        response = await client.request(method, path, json=body, headers=admin_headers)
        assert response.status_code == 404, (method, path)


async def test_two_operators_recording_at_once_leave_one_record_and_two_entries(
    client: AsyncClient, admin_headers: dict[str, str], at_noon: datetime, session: AsyncSession
) -> None:
    driver_id, _ = await register(client, admin_headers, vehicle=car())
    bodies = [
        qualification(authorization_expires_on="2028-01-01"),
        qualification(authorization_expires_on="2029-01-01"),
    ]
    answers = await asyncio.gather(
        *(
            client.put(f"/v1/drivers/{driver_id}/qualification", json=body, headers=admin_headers)
            for body in bodies
        )
    )
    assert [answer.status_code for answer in answers] == [200, 200]
    records = (
        await session.scalars(
            select(DriverQualification).where(DriverQualification.driver_id == driver_id)
        )
    ).all()
    assert len(records) == 1
    assert str(records[0].authorization_expires_on) in {"2028-01-01", "2029-01-01"}
    audited = await session.scalar(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.kind == "driver_qualification_recorded")
    )
    assert audited == 2


async def test_a_jurisdiction_that_requires_nothing_qualifies_every_driver(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    app = create_app(settings.model_copy(update={"jurisdiction": "none"}))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
            driver = await make_driver(http, admin_headers)
            mine = await standing(http, driver.headers)
    assert (mine["jurisdiction"], mine["eligible"], mine["items"]) == ("none", True, [])
