"""The rater's pseudonym: 128 bits of an HMAC under its own secret, and ratings held back from
their driver until the agreement's reputation.reveal_after_ratings newer ones exist."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop import keys
from coop.settings import Settings
from reputation.pseudonym import derive_key, rater_pseudonym
from server.app import create_app
from tests.builders import make_driver, make_rider
from tests.reputation.helpers import assert_problem, install_policy, rated_trip, terms


def test_the_pseudonym_is_128_bits_of_an_hmac_not_of_the_admin_token() -> None:
    driver_id, rider_id = os.urandom(16), os.urandom(16)
    d, r = uuid.UUID(bytes=driver_id), uuid.UUID(bytes=rider_id)
    key = derive_key("a pseudonym secret of more than thirty-two characters")
    name = rater_pseudonym(key=key, driver_id=d, rider_id=r)
    expected = hmac.new(key, d.bytes + r.bytes, hashlib.sha256).hexdigest()[:32]
    assert name == "rider-" + expected
    assert name != rater_pseudonym(
        key=derive_key("test-admin-token-0123456789abcdef"), driver_id=d, rider_id=r
    )


def test_production_refuses_to_start_without_its_own_pseudonym_key(settings: Settings) -> None:
    strong = "k" * 8 + "an admin token long enough for production"
    production = settings.model_copy(
        update={
            "env": "production",
            "admin_token": strong,
            "ballot_key": SecretStr("a ballot key of its own, 32+ characters long"),
        }
    )
    with pytest.raises(keys.MissingKey, match="COOP_PSEUDONYM_KEY"):
        create_app(production)
    with pytest.raises(ValueError, match="COOP_PSEUDONYM_KEY"):
        Settings(env="production", admin_token=strong, pseudonym_key=strong)
    with pytest.raises(keys.MissingKey, match="COOP_PSEUDONYM_KEY"):
        keys.service_key(
            name="pseudonym",
            configured=SecretStr("short"),
            env="production",
            data_dir=settings.data_dir,
        )
    ok = Settings(
        env="production",
        admin_token=strong,
        pseudonym_key="p" * 16 + "qrstuvwxyz012345",
        tax_registrations={"gst": "123456789RT0001", "qst": "1234567890TQ0001"},
    )
    assert "pppp" not in repr(ok)  # the secret never shows in a log of the settings


def test_development_generates_the_key_once_and_keeps_it_private(short_tmp: Path) -> None:
    def generated() -> bytes:
        return keys.service_key(name="pseudonym", configured=None, env="dev", data_dir=short_tmp)

    first = generated()
    assert len(first) >= 32
    assert generated() == first  # kept, not regenerated
    mode = stat.S_IMODE((short_tmp / "keys" / "pseudonym.key").stat().st_mode)
    assert mode == 0o600
    assert [p.name for p in (short_tmp / "keys").iterdir()] == ["pseudonym.key"]


async def test_raters_are_renamed_only_by_the_pseudonym_key(
    settings: Settings,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers)
    await rated_trip(client, sessionmaker, rider, driver, 4)

    async def rater_under(changes: dict[str, object]) -> str:
        other = create_app(settings.model_copy(update=changes))
        async with (
            LifespanManager(other, startup_timeout=30, shutdown_timeout=30),
            AsyncClient(transport=ASGITransport(app=other), base_url="http://t") as http,
        ):
            ratings = (await http.get("/v1/drivers/me/ratings", headers=driver.headers)).json()
        return str(ratings[0]["rater"])

    plain = await rater_under({})
    assert await rater_under({"admin_token": "another-admin-token-0123456789abcdef"}) == plain
    other_key = SecretStr("another pseudonym key, of 32+ characters")
    assert await rater_under({"pseudonym_key": other_key}) != plain


async def test_a_rating_shows_once_n_newer_ones_exist_and_the_score_counts_it_anyway(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    install_policy(app, terms(reveal_after_ratings=2, min_ratings=1))
    driver = await make_driver(client, admin_headers)
    riders = [await make_rider(client, f"Rider {i}") for i in range(3)]
    first = await rated_trip(
        client, sessionmaker, riders[0], driver, 2, ended_ago=timedelta(hours=3)
    )

    async def shown() -> list[str]:
        response = await client.get("/v1/drivers/me/ratings", headers=driver.headers)
        return [r["id"] for r in response.json()]

    assert await shown() == []
    reputation = (await client.get("/v1/drivers/me/reputation", headers=driver.headers)).json()
    assert reputation["ratings_counted"] == 1  # counted, though not shown
    # Not shown is not there: it cannot be appealed yet, and the export does not hold it.
    assert_problem(
        await client.post(
            f"/v1/ratings/{first['id']}/appeal",
            json={"statement": "The traffic was not my doing"},
            headers=driver.headers,
        ),
        404,
        "rating_not_found",
    )
    export = (await client.get("/v1/drivers/me/export", headers=driver.headers)).json()
    assert export["ratings_received"] == []
    await rated_trip(client, sessionmaker, riders[1], driver, 5, ended_ago=timedelta(hours=2))
    assert await shown() == []
    await rated_trip(client, sessionmaker, riders[2], driver, 5, ended_ago=timedelta(hours=1))
    assert await shown() == [first["id"]]  # two newer ones exist now
    appealed = await client.post(
        f"/v1/ratings/{first['id']}/appeal",
        json={"statement": "The traffic was not my doing"},
        headers=driver.headers,
    )
    assert appealed.status_code == 201, appealed.text
    reputation = (await client.get("/v1/drivers/me/reputation", headers=driver.headers)).json()
    assert reputation["ratings_counted"] == 3
