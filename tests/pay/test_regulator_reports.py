"""The regulator's reports (docs/jurisdiction.md): the month's trip register with the amount
billed to the rider and paid to the driver, the driver's licence and the car as recorded when the
trip started; the quarter's requests for adapted cars; the same period gives the same bytes, and
each production is audited with its sha256."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coop.audit import AuditEntry
from coop.settings import Settings
from coop.state import CoreState, state_of
from server.simulator import registration
from tests.builders import make_driver, make_rider, offer_to, place_driver, request_trip
from tests.pay.helpers import completed_trip

MONTREAL = ZoneInfo("America/Toronto")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _month_of(trip: dict[str, object]) -> str:
    ended = datetime.fromisoformat(str(trip["ended_at"])).astimezone(MONTREAL)
    return f"{ended:%Y-%m}"


async def test_the_months_trip_register_has_the_regulators_columns_and_is_reproducible(
    app: FastAPI,
    client: AsyncClient,
    session: AsyncSession,
    admin_headers: dict[str, str],
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers, name="Dana Driver")
    trip = await completed_trip(app, client, session, rider, driver)
    month = _month_of(trip)
    # A new car recorded after the trip does not change what the register says of the trip.
    today = datetime.now(MONTREAL).date()
    newer = registration.vehicle(9, today, plate="NEW 999", owner="Someone Else")
    recorded = await client.put(
        f"/v1/drivers/{driver.id}/vehicle", json=newer, headers=admin_headers
    )
    assert recorded.status_code == 200

    path = f"/v1/reports/regulator/trips?month={month}"
    first = await client.get(path, headers=admin_headers)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("text/csv")
    header_line, *table = first.text.splitlines()
    assert header_line.startswith(f"# report=trips_monthly period={month} jurisdiction=quebec")
    rows = list(csv.reader(io.StringIO("\n".join(table))))
    assert rows[0][:2] == ["Date et heure de la demande", "Mode"]
    assert "Montant facturé au client" in rows[0]
    [row] = [dict(zip(rows[0], values, strict=True)) for values in rows[1:]]
    assert row["Mode"] == "exclusif"
    assert row["Montant facturé au client"] == "9.09"  # 7.00 + 0.90 + GST 0.40 + QST 0.79
    assert row["Montant versé au chauffeur"] == "6.44"
    assert row["Numéro de plaque"] == "FXK 123" and row["Propriétaire"] == "Dana Driver"
    assert row["Numéro de dossier du permis de conduire"].startswith("SIM")
    assert row["Lieu du début"].count(",") == 1

    again = await client.get(path, headers=admin_headers)
    assert again.content == first.content
    digest = first.headers["x-report-sha256"]
    entries = (
        await session.scalars(select(AuditEntry).where(AuditEntry.kind == "regulator_report"))
    ).all()
    assert [entry.content["sha256"] for entry in entries] == [digest, digest]

    as_json = await client.get(f"{path}&format=json", headers=admin_headers)
    document = as_json.json()
    assert document["header"]["sha256"] == digest and document["header"]["rows"] == 1
    assert document["rows"][0]["amount_billed"] == "9.09"
    body_rows = [[r[c["key"]] for c in document["columns"]] for r in document["rows"]]
    recomputed = hashlib.sha256(
        json.dumps(body_rows, ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()
    assert recomputed == digest


async def test_a_month_without_trips_is_an_empty_register_and_bad_periods_are_refused(
    client: AsyncClient, admin_headers: dict[str, str], rider_headers: dict[str, str]
) -> None:
    empty = await client.get("/v1/reports/regulator/trips?month=2019-02", headers=admin_headers)
    assert empty.status_code == 200
    lines = empty.text.splitlines()
    assert "rows=0" in lines[0] and len(lines) == 2
    for query in ("month=2027-13", "month=March", "month=2027-3", "", "month=2027-03&format=pdf"):
        refused = await client.get(f"/v1/reports/regulator/trips?{query}", headers=admin_headers)
        assert refused.status_code == 422, query
    for headers in ({}, rider_headers):
        denied = await client.get("/v1/reports/regulator/trips?month=2027-03", headers=headers)
        assert denied.status_code in (401, 403)
    quarter = await client.get(
        "/v1/reports/regulator/adapted-requests?quarter=2027-Q5", headers=admin_headers
    )
    assert quarter.status_code == 422


@pytest.fixture
async def rider_headers(client: AsyncClient) -> dict[str, str]:
    return (await make_rider(client, "Curious")).headers


async def test_the_quarters_adapted_requests_count_served_unserved_and_the_median_wait(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    served_rider, unserved_rider = await make_rider(client), await make_rider(client, "Second")
    ramp = await make_driver(client, admin_headers, wheelchair_accessible=True)
    requested = await request_trip(client, served_rider, wheelchair_accessible=True)
    await place_driver(app, ramp.id, {"lat": 45.5019, "lon": -73.5674})
    accepted = await client.post(
        f"/v1/offers/{await offer_to(app, ramp)}/accept", headers=ramp.headers
    )
    assert accepted.status_code == 200
    await request_trip(client, unserved_rider, wheelchair_accessible=True)
    when = datetime.fromisoformat(str(requested["requested_at"])).astimezone(MONTREAL)
    quarter = f"{when.year}-Q{(when.month - 1) // 3 + 1}"
    report = await client.get(
        f"/v1/reports/regulator/adapted-requests?quarter={quarter}&format=json",
        headers=admin_headers,
    )
    assert report.status_code == 200, report.text
    [row] = report.json()["rows"]
    assert (row["requested"], row["served"], row["unserved"]) == ("2", "1", "1")
    assert int(row["median_wait_s"]) >= 0


async def test_the_command_line_writes_the_same_report(app: FastAPI, settings: Settings) -> None:
    # `app`: the founding agreement is installed, as on any running service.
    env = {**os.environ, "COOP_DATABASE_URL": settings.database_url, "COOP_ENV": "test"}
    done = subprocess.run(
        [sys.executable, "-m", "server", "report", "trips", "--month", "2019-02"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().startswith("# report=trips_monthly period=2019-02")
    refused = subprocess.run(
        [sys.executable, "-m", "server", "report", "trips", "--month", "2019-13"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2 and b"YYYY-MM" in refused.stderr


async def test_the_years_trips_by_municipality_from_the_coops_own_map(
    app: FastAPI,
    client: AsyncClient,
    session: AsyncSession,
    admin_headers: dict[str, str],
    settings: Settings,
) -> None:
    path = "/v1/reports/regulator/municipalities?year=2019"
    unset = await client.get(path, headers=admin_headers)
    assert unset.status_code == 409 and unset.json()["type"].endswith("no_municipalities")

    state_of(app, CoreState).settings = settings.model_copy(
        update={"municipalities": FIXTURES / "municipalities.geojson"}
    )
    trip = await completed_trip(
        app, client, session, await make_rider(client), await make_driver(client, admin_headers)
    )
    year = datetime.fromisoformat(str(trip["ended_at"])).astimezone(MONTREAL).year
    report = await client.get(
        f"/v1/reports/regulator/municipalities?year={year}&format=json", headers=admin_headers
    )
    assert report.status_code == 200, report.text
    [row] = report.json()["rows"]
    # The builders' trips go from downtown (Ville-Marie) to the Plateau.
    assert (row["origin"], row["destination"], row["trips"]) == (
        "Montréal — Ville-Marie",
        "Montréal — Le Plateau-Mont-Royal",
        "1",
    )
    empty = await client.get(path, headers=admin_headers)
    assert empty.status_code == 200 and "rows=0" in empty.text.splitlines()[0]
    assert (await client.get(path.replace("2019", "19"), headers=admin_headers)).status_code == 422


async def test_the_months_dues_collected_to_remit(
    app: FastAPI,
    client: AsyncClient,
    session: AsyncSession,
    admin_headers: dict[str, str],
) -> None:
    driver = await make_driver(client, admin_headers)
    trip = await completed_trip(app, client, session, await make_rider(client), driver)
    month = _month_of(trip)
    report = await client.get(
        f"/v1/reports/regulator/dues?month={month}&format=json", headers=admin_headers
    )
    assert report.status_code == 200, report.text
    assert report.json()["rows"] == [
        {"month": month, "trips": "1", "dues_per_trip": "0.90", "dues_total": "0.90"}
    ]
    none = await client.get("/v1/reports/regulator/dues?month=2019-02", headers=admin_headers)
    assert none.text.splitlines()[-1] == "2019-02,0,0.90,0.00"
