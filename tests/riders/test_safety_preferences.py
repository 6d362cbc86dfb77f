"""A rider's safety preferences (riders/safety.py) through `GET/PATCH /v1/riders/me`: the PIN and
auto-share policies and up to five trusted contacts, validated, and only the fields given
change."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from riders.safety import MAX_CONTACTS, NO_PREFERENCES, TrustedContact, load_safety_preferences
from tests.builders import make_rider


async def _patch(client: AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return await client.patch("/v1/riders/me", json=body, headers=headers)


async def test_a_new_rider_has_the_defaults(client: AsyncClient, session: AsyncSession) -> None:
    rider = await make_rider(client)
    me = (await client.get("/v1/riders/me", headers=rider.headers)).json()
    assert me["safety"] == {"pin": None, "auto_share": "never", "contacts": []}
    assert await load_safety_preferences(session, rider.id) == NO_PREFERENCES


async def test_preferences_are_stored_normalised_and_read_back(
    client: AsyncClient, session: AsyncSession
) -> None:
    rider = await make_rider(client)
    named = await _patch(client, rider.headers, {"first_name": "Rosa"})
    assert named.status_code == 200, named.text
    answer = await _patch(
        client,
        rider.headers,
        {
            "safety": {
                "pin": "always",
                "auto_share": "night",
                "contacts": [
                    {"name": "Lucie", "phone": "+1 (514) 555-0199"},
                    {"name": "Marc", "email": " Marc@Example.ORG "},
                    {"name": "Ana", "phone": "514.555.0100", "email": "ana@example.org"},
                ],
            }
        },
    )
    assert answer.status_code == 200, answer.text
    safety = answer.json()["safety"]
    assert safety["pin"] == "always" and safety["auto_share"] == "night"
    assert safety["contacts"] == [
        {"name": "Lucie", "phone": "+15145550199", "email": None},
        {"name": "Marc", "phone": None, "email": "marc@example.org"},
        {"name": "Ana", "phone": "5145550100", "email": "ana@example.org"},
    ]
    # A body about safety keeps the first name; GET shows what PATCH answered.
    me = (await client.get("/v1/riders/me", headers=rider.headers)).json()
    assert me["first_name"] == "Rosa"
    assert me["safety"] == safety
    stored = await load_safety_preferences(session, rider.id)
    assert stored.pin == "always" and stored.auto_share == "night"
    assert stored.contacts[0] == TrustedContact(name="Lucie", phone="+15145550199")

    # Only the fields given change; `null` resets a policy to the co-op's default.
    answer = await _patch(client, rider.headers, {"safety": {"pin": None}})
    assert answer.json()["safety"]["pin"] is None
    assert answer.json()["safety"]["auto_share"] == "night"
    assert len(answer.json()["safety"]["contacts"]) == 3
    answer = await _patch(client, rider.headers, {"safety": {"contacts": []}})
    assert answer.json()["safety"]["contacts"] == []
    # The first name can still be withdrawn with an explicit null.
    answer = await _patch(client, rider.headers, {"first_name": None})
    assert answer.json()["first_name"] is None
    assert answer.json()["safety"]["auto_share"] == "night"


@pytest.mark.parametrize(
    "safety",
    [
        {"pin": "sometimes"},
        {"auto_share": "weekends"},
        {"pin": True},
        {"contacts": [{"name": "Lucie"}]},
        {"contacts": [{"name": "Lucie", "phone": "call me"}]},
        {"contacts": [{"name": "Lucie", "phone": "12345"}]},
        {"contacts": [{"name": "Lucie", "phone": "+1 514 555 0199 0199 0199"}]},
        {"contacts": [{"name": "Lucie", "email": "lucie"}]},
        {"contacts": [{"name": "Lucie", "email": "Lucie <lucie@example.org>"}]},
        {"contacts": [{"name": "", "phone": "5145550199"}]},
        {"contacts": [{"name": "Lu\u0000cie", "phone": "5145550199"}]},
        {"contacts": [{"name": "Lucie", "phone": "5145550199", "address": "1 rue X"}]},
        {"contacts": [{"name": f"C{i}", "phone": "5145550199"} for i in range(MAX_CONTACTS + 1)]},
        {"contacts": None, "colour": "red"},
    ],
)
async def test_bad_preferences_are_refused_and_nothing_is_half_written(
    client: AsyncClient, safety: dict[str, Any]
) -> None:
    rider = await make_rider(client)
    before = await _patch(
        client,
        rider.headers,
        {"safety": {"pin": "night", "contacts": [{"name": "Lucie", "phone": "5145550199"}]}},
    )
    assert before.status_code == 200, before.text
    answer = await _patch(client, rider.headers, {"first_name": "Rosa", "safety": safety})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    me = (await client.get("/v1/riders/me", headers=rider.headers)).json()
    assert me["safety"] == before.json()["safety"]
    assert me["first_name"] is None


async def test_a_driver_cannot_read_or_write_rider_preferences(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    from tests.builders import make_driver

    driver = await make_driver(client, admin_headers)
    answer = await _patch(client, driver.headers, {"safety": {"pin": "always"}})
    assert answer.status_code == 403, answer.text
    assert (await client.get("/v1/riders/me", headers=driver.headers)).status_code == 403


async def test_two_first_changes_at_once_both_land(client: AsyncClient) -> None:
    """Two of a rider's phones change their preferences at the same moment, before any row
    exists: neither is lost nor refused."""
    import asyncio

    riders = [await make_rider(client) for _ in range(4)]
    answers = await asyncio.gather(
        *(
            _patch(client, rider.headers, {"safety": body})
            for rider in riders
            for body in ({"pin": "always"}, {"auto_share": "night"})
        )
    )
    assert [answer.status_code for answer in answers] == [200] * len(answers), [
        answer.text for answer in answers
    ]
    for rider in riders:
        me = (await client.get("/v1/riders/me", headers=rider.headers)).json()
        assert me["safety"] == {"pin": "always", "auto_share": "night", "contacts": []}
