"""Personal-data exports through the real API and database: a driver's trips, offers, positions
and ballots, a rider's trips and request keys; each person sees their own records and nobody
else's, and every section is declared in the data register."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from coop.db import utcnow
from coop.settings import Settings
from reputation import data_register
from reputation.export import BUILT_IN
from server.app import create_app
from tests.bargaining.conftest import Clock, open_proposal, proposal_body, vote
from tests.builders import (
    DOWNTOWN,
    PLATEAU,
    Account,
    consented,
    make_driver,
    make_rider,
    offer_to,
    place_driver,
    request_trip,
)

DRIVER_SECTIONS = {
    "qualification",
    "decision_reviews",
    "trips_driven",
    "offers_received",
    "positions",
    "ballots",
    "proposals_made",
    "pay_statements",
    "patronage",
    "photo",
}
RIDER_SECTIONS = {"trips_requested", "idempotency_keys", "decision_reviews", "safety"}
# The links each made to let others follow a trip (docs/safety.md, "Share my trip").
DRIVER_SECTIONS |= {"trip_shares"}
RIDER_SECTIONS |= {"trip_shares"}
# A driver's own trip sharing: their policy and trusted contacts.
DRIVER_SECTIONS |= {"safety"}
# On the way to the pickup, then with the rider: the trail of trip A.
ROUTE = [
    {"lat": 45.5030, "lon": -73.5680},
    {"lat": 45.5080, "lon": -73.5710},
    {"lat": 45.5150, "lon": -73.5750},
]


async def report(app: FastAPI, driver: Account, position: dict[str, float]) -> None:
    """A location report through the ingest the sockets use, written at once."""
    app.state.locations.report(
        driver.id,
        lat=position["lat"],
        lon=position["lon"],
        heading_deg=90.0,
        speed_mps=8.0,
        received_at=utcnow(),
    )
    await app.state.locations.flush()


async def export_of(client: AsyncClient, account: Account, audience: str) -> dict[str, Any]:
    response = await client.get(f"/v1/{audience}s/me/export", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def post(
    client: AsyncClient,
    path: str,
    account: Account,
    *,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = await client.post(path, json=body, headers={**account.headers, **(headers or {})})
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    return answer


@dataclass
class City:
    rosa: Account  # rode trip A (completed) and asked for trip C (expired offer, cancelled)
    sam: Account  # asked for trip B, which dana declined and omar took
    dana: Account  # drove A, declined B, let C's offer lapse, voted yes
    omar: Account  # drives B, voted no
    chair: Account  # opened the proposal, did not vote
    trip_a: dict[str, Any]
    trip_b: dict[str, Any]
    trip_c: dict[str, Any]
    proposal_id: str


@pytest.fixture
async def city(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> City:
    rosa = await make_rider(client, "Rosa Quintero")
    sam = await make_rider(client, "Sam Other")
    dana = await make_driver(client, admin_headers, name="Dana Driver")
    omar = await make_driver(client, admin_headers, name="Omar Other")
    chair = await make_driver(client, admin_headers, name="Chair Person", committee=True)

    # Trip A: rosa asks with an Idempotency-Key, dana drives it to the end.
    trip_a = await post(
        client,
        "/v1/trips",
        rosa,
        body=await consented(client, rosa, {"pickup": DOWNTOWN, "dropoff": PLATEAU}),
        headers={"Idempotency-Key": "rosa-key-1"},
    )
    await place_driver(app, dana.id, DOWNTOWN)
    await post(client, f"/v1/offers/{await offer_to(app, dana)}/accept", dana)
    await report(app, dana, ROUTE[0])
    await post(client, f"/v1/trips/{trip_a['id']}/arrived", dana)
    await post(client, f"/v1/trips/{trip_a['id']}/start", dana)
    for position in ROUTE[1:]:
        await report(app, dana, position)
    trip_a = await post(client, f"/v1/trips/{trip_a['id']}/complete", dana)
    assert trip_a["status"] == "completed" and trip_a["fare"] is not None

    # Trip B: sam's; dana declines it, omar takes it and reports his position on the way.
    trip_b = await request_trip(client, sam)
    declined = await offer_to(app, dana)
    await post(client, f"/v1/offers/{declined}/decline", dana)
    await place_driver(app, omar.id, PLATEAU)
    trip_b = await post(client, f"/v1/offers/{await offer_to(app, omar)}/accept", omar)
    await report(app, omar, {"lat": 45.5200, "lon": -73.5790})

    # Trip C: rosa again; dana lets the offer lapse, then rosa calls it off.
    trip_c = await request_trip(client, rosa)
    lapsed = await offer_to(app, dana)
    # It reached her socket (its worker records the receipt), and she let it lapse.
    await session.execute(
        text(
            "UPDATE trip_offer SET delivered_at = now(), expires_at = now() - interval '1 second' "
            "WHERE id = :id"
        ),
        {"id": lapsed},
    )
    await session.commit()
    assert (await app.state.matcher.run_batch()).expired_offers == 1
    trip_c = await post(client, f"/v1/trips/{trip_c['id']}/cancel", rosa, body={"reason": "late"})

    # A vote: dana yes, omar no, the chair on the roll without voting.
    proposal = await open_proposal(client, chair, proposal_body(Clock(utcnow())))
    await vote(client, dana, proposal["id"], "yes")
    await vote(client, omar, proposal["id"], "no")
    return City(rosa, sam, dana, omar, chair, trip_a, trip_b, trip_c, proposal["id"])


async def test_a_driver_sees_their_trips_offers_positions_and_ballot(
    client: AsyncClient, city: City
) -> None:
    response = await client.get("/v1/drivers/me/export", headers=city.dana.headers)
    assert response.status_code == 200, response.text
    export = response.json()
    assert DRIVER_SECTIONS <= set(export)

    [driven] = export["trips_driven"]
    assert driven["id"] == city.trip_a["id"] and driven["status"] == "completed"
    assert driven["fare"] == city.trip_a["fare"]
    assert driven["quote"] == city.trip_a["quote"]
    assert driven["fare"]["driver_earnings"] and driven["fare"]["coop_commission"]
    assert driven["driver_id"] == str(city.dana.id)
    assert (driven["pickup"], driven["dropoff"]) == (DOWNTOWN, PLATEAU)
    assert driven["service_class"] == "standard"
    assert "rider_id" not in driven

    offers = export["offers_received"]
    assert [(o["trip_id"], o["status"]) for o in offers] == [
        (city.trip_a["id"], "accepted"),
        (city.trip_b["id"], "declined"),
        (city.trip_c["id"], "expired"),
    ]
    for offer in offers:
        assert offer["why"] and offer["pickup_distance_m"] >= 0 and offer["responded_at"]

    positions = export["positions"]
    latest = positions["latest"]
    assert latest["position"] == ROUTE[-1]
    assert latest["available"] is True and latest["heading_deg"] == 90.0
    assert [t["trip_id"] for t in positions["trails"]] == [city.trip_a["id"]]
    assert [{"lat": p["lat"], "lon": p["lon"]} for p in positions["trails"][0]["points"]] == ROUTE

    assert export["ballots"] == [
        {
            "proposal_id": city.proposal_id,
            "title": "Raise the per-km rate",
            "choice": "yes",
            "cast_at": None,  # a ballot keeps no date
            "sealed": False,
        }
    ]
    assert export["proposals_made"] == []

    # Nothing of the riders, of the other driver, or of their trip and ballot.
    for not_theirs in (
        city.rosa.id,
        city.sam.id,
        city.omar.id,
        city.chair.id,
        "Rosa Quintero",
        "Omar Other",
        '"no"',
        city.dana.token,
    ):
        assert str(not_theirs) not in response.text, not_theirs


async def test_another_driver_sees_only_their_own(client: AsyncClient, city: City) -> None:
    omar = await export_of(client, city.omar, "driver")
    assert [t["id"] for t in omar["trips_driven"]] == [city.trip_b["id"]]
    assert omar["trips_driven"][0]["status"] == "assigned"
    assert [(o["trip_id"], o["status"]) for o in omar["offers_received"]] == [
        (city.trip_b["id"], "accepted")
    ]
    assert [t["trip_id"] for t in omar["positions"]["trails"]] == [city.trip_b["id"]]
    assert [(b["proposal_id"], b["choice"]) for b in omar["ballots"]] == [(city.proposal_id, "no")]
    written = json.dumps(omar)
    for not_theirs in (city.dana.id, city.trip_a["id"], city.trip_c["id"], '"yes"'):
        assert str(not_theirs) not in written, not_theirs


async def test_ballots_stay_secret_in_the_exports(client: AsyncClient, city: City) -> None:
    chair = await export_of(client, city.chair, "driver")
    # On the roll, no ballot cast: their own row says so, and shows nobody else's.
    assert chair["ballots"] == [
        {
            "proposal_id": city.proposal_id,
            "title": "Raise the per-km rate",
            "choice": None,
            "cast_at": None,
            "sealed": False,
        }
    ]
    assert [p["proposal_id"] for p in chair["proposals_made"]] == [city.proposal_id]
    for account in (city.dana, city.omar):
        assert str(account.id) not in json.dumps(chair)
    # Each member's export holds exactly one ballot: their own.
    for member, choice in ((city.dana, "yes"), (city.omar, "no")):
        ballots = (await export_of(client, member, "driver"))["ballots"]
        assert [b["choice"] for b in ballots] == [choice]


async def test_a_rider_sees_their_trips_and_keys_and_not_others(
    client: AsyncClient, city: City
) -> None:
    response = await client.get("/v1/riders/me/export", headers=city.rosa.headers)
    assert response.status_code == 200, response.text
    export = response.json()
    assert RIDER_SECTIONS <= set(export)

    completed, cancelled = export["trips_requested"]
    # Trips as the wire shows them to the rider: the same object GET /v1/trips/{id} answers.
    now = (await client.get(f"/v1/trips/{city.trip_a['id']}", headers=city.rosa.headers)).json()
    # trip_a is the driver's answer to `complete`: the same trip without the rider's account.
    assert completed == now == {**city.trip_a, "rider_id": str(city.rosa.id), "rider": None}
    assert city.trip_a["rider_id"] is None
    assert completed["fare"]["total"] and completed["quote"]["total"]
    assert completed["driver"]["name"] == "Dana Driver"
    assert cancelled["id"] == city.trip_c["id"]
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_by"] == "rider"
    assert cancelled["cancel_reason"] == "late" and cancelled["cancellation_fee"] == "0.00"

    [key] = export["idempotency_keys"]
    assert key["key"] == "rosa-key-1" and key["trip_id"] == city.trip_a["id"]
    assert len(key["request_sha256"]) == 64

    for not_theirs in (city.trip_b["id"], city.sam.id, "Sam Other", city.omar.id, "Omar Other"):
        assert str(not_theirs) not in response.text, not_theirs

    sam = await export_of(client, city.sam, "rider")
    assert [t["id"] for t in sam["trips_requested"]] == [city.trip_b["id"]]
    assert sam["idempotency_keys"] == []
    for not_theirs in (city.trip_a["id"], city.trip_c["id"], city.rosa.id, "rosa-key-1"):
        assert str(not_theirs) not in json.dumps(sam), not_theirs


async def test_sections_of_a_person_with_no_records_are_empty(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    member = await make_driver(client, admin_headers, qualified=False)
    driver = await export_of(client, member, "driver")
    assert {name: driver[name] for name in DRIVER_SECTIONS} == {
        # The car's facts are recorded at registration; the register holds nothing else yet.
        "qualification": {
            "recorded": [
                {
                    "kind": "vehicle",
                    "facts": driver["qualification"]["vehicle"],
                    "recorded_at": driver["qualification"]["recorded"][0]["recorded_at"],
                }
            ],
            "driver": None,
            "vehicle": {
                "plate": "FXK 123",
                "seats": 4,
                "wheelchair_accessible": False,
                **dict.fromkeys(
                    ("vin", "make", "model", "year", "colour", "owner", "odometer_km"), None
                ),
                "inspection_due_on": None,
            },
        },
        "decision_reviews": [],
        "trips_driven": [],
        "offers_received": [],
        "positions": {"latest": None, "trails": []},
        "pay_statements": [],
        "patronage": [],
        "ballots": [],
        "proposals_made": [],
        "trip_shares": [],
        "photo": None,
        "safety": {"auto_share": "never", "contacts": []},
    }
    rider = await export_of(client, await make_rider(client), "rider")
    assert {name: rider[name] for name in RIDER_SECTIONS} == {
        "decision_reviews": [],
        "trips_requested": [],
        "idempotency_keys": [],
        "trip_shares": [],
        "safety": {"pin": None, "auto_share": "never", "contacts": []},
    }


async def test_every_export_section_is_in_the_data_register(settings: Settings) -> None:
    app = create_app(settings)
    declared: dict[str, set[str]] = {"driver": set(), "rider": set()}
    for kind in data_register.REGISTER:
        for place in kind.exported:
            declared[place.audience].add(place.section)
    for audience in ("driver", "rider"):
        sections = set(BUILT_IN[audience]) | set(app.state.export_sections[audience])
        assert declared[audience] == sections, audience
    assert set(app.state.export_sections["driver"]) == DRIVER_SECTIONS
    assert set(app.state.export_sections["rider"]) == RIDER_SECTIONS
