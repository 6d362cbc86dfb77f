"""Trust, tried as a hostile user would over the real protocol (docs/security.md): floods of
accounts and requests, spoofed addresses, too many sockets, huge bodies, leaked and revoked
tokens, log readers, and strangers reading the operators' metrics."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from coop.auth import Role, issue_token
from coop.db import utcnow
from coop.errors import RateLimited
from coop.ratelimit import RateLimits
from coop.settings import DEV_ADMIN_TOKEN, Settings
from devtools.processes import ServiceProcess
from dispatch.realtime.hub import CLOSE_REPLACED, CLOSE_TOKEN_REVOKED
from tests.builders import assert_rate_limited, live_server, make_driver, make_rider, serve
from tests.polling import text_with
from tests.servers import ThrowawayRedis, service_process


async def wait_closed(connection: object, within_s: float = 5.0) -> int | None:
    await asyncio.wait_for(connection.wait_closed(), within_s)  # type: ignore[attr-defined]
    code: int | None = connection.close_code  # type: ignore[attr-defined]
    return code


# --- rate limits ------------------------------------------------------------------------------


async def test_signup_is_limited_per_address_across_workers(settings: Settings) -> None:
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    async with (
        serve(settings, signup_limit="3/hour") as one,
        serve(settings, signup_limit="3/hour") as two,
    ):
        for worker in (one, two, one):
            response = await worker.http.post("/v1/riders", json={"name": "Script"})
            assert response.status_code == 201, response.text
        refused = await two.http.post("/v1/riders", json={"name": "Script"})
        assert_rate_limited(refused)
        # A spoofed X-Forwarded-For changes nothing: no proxy is trusted here.
        spoofed = await one.http.post(
            "/v1/riders", json={"name": "Script"}, headers={"X-Forwarded-For": "198.51.100.7"}
        )
        assert_rate_limited(spoofed)
        # A rider's token does not lift the limit; the admin's does (bulk loading).
        rider_token = (await one.http.post("/v1/riders", json={"name": "x"}, headers=admin)).json()
        as_rider = {"Authorization": f"Bearer {rider_token['token']}"}
        assert_rate_limited(await one.http.post("/v1/riders", json={"name": "x"}, headers=as_rider))
        for _ in range(5):
            response = await two.http.post("/v1/riders", json={"name": "Bulk"}, headers=admin)
            assert response.status_code == 201


async def test_behind_a_trusted_proxy_the_address_comes_from_x_forwarded_for(
    settings: Settings,
) -> None:
    async with serve(settings, signup_limit="2/hour", trusted_proxies=["127.0.0.1"]) as proxy:
        first = {"X-Forwarded-For": "203.0.113.10"}
        # A client's own entry to the left of the proxy's is not believed.
        forged = {"X-Forwarded-For": "192.0.2.99, 203.0.113.10"}
        for headers in (first, forged):
            response = await proxy.http.post("/v1/riders", json={"name": "A"}, headers=headers)
            assert response.status_code == 201
        assert_rate_limited(await proxy.http.post("/v1/riders", json={"name": "A"}, headers=first))
        other = {"X-Forwarded-For": "203.0.113.11"}
        response = await proxy.http.post("/v1/riders", json={"name": "B"}, headers=other)
        assert response.status_code == 201


async def test_authenticated_routes_are_limited_per_account_not_per_token(
    settings: Settings,
) -> None:
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    async with (
        serve(settings, api_limit="4/minute") as one,
        serve(settings, api_limit="4/minute") as two,
    ):
        rider = await make_rider(one.http)
        second = (await one.http.post("/v1/tokens", headers=rider.headers)).json()["token"]
        for worker in (two, one):
            response = await worker.http.get(f"/v1/trips/{uuid.uuid4()}", headers=rider.headers)
            assert response.status_code == 404
        second_headers = {"Authorization": f"Bearer {second}"}
        response = await two.http.get(f"/v1/trips/{uuid.uuid4()}", headers=second_headers)
        assert response.status_code == 404
        assert_rate_limited(await one.http.get(f"/v1/trips/{uuid.uuid4()}", headers=second_headers))
        assert_rate_limited(await two.http.get(f"/v1/trips/{uuid.uuid4()}", headers=rider.headers))
        # The socket handshake counts too, refused before the upgrade.
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                one.ws_url("/v1/ws/rider"), additional_headers=rider.headers, open_timeout=5
            ):
                pass
        assert refused.value.response.status_code == 429
        # Another rider is not held back, and the admin is exempt.
        other = await make_rider(two.http)
        response = await one.http.get(f"/v1/trips/{uuid.uuid4()}", headers=other.headers)
        assert response.status_code == 404
        for _ in range(8):
            assert (await two.http.get("/v1/support-cases", headers=admin)).status_code == 200


async def test_a_fourth_socket_closes_the_oldest_across_workers(settings: Settings) -> None:
    async with serve(settings) as one, serve(settings) as two:
        rider = await make_rider(one.http)
        headers = rider.headers
        opened = []
        for worker in (one, two, one, two):
            connection = await connect(
                worker.ws_url("/v1/ws/rider"),
                additional_headers=headers,
                open_timeout=5,
                ping_interval=None,
            )
            hello = json.loads(await asyncio.wait_for(connection.recv(), 5))
            assert hello["type"] == "hello"
            opened.append(connection)
        try:
            assert await wait_closed(opened[0]) == CLOSE_REPLACED
            for connection in opened[1:]:
                await connection.send(json.dumps({"type": "ping"}))
                assert json.loads(await asyncio.wait_for(connection.recv(), 5))["type"] == "pong"
        finally:
            for connection in opened:
                await connection.close()


async def test_limits_fail_open_while_redis_is_down(settings: Settings, short_tmp: Path) -> None:
    redis = ThrowawayRedis(short_tmp)
    limits = RateLimits(
        settings.model_copy(update={"redis_url": redis.url, "api_limit": "2/minute"})
    )
    try:
        for _ in range(5):  # nothing to count in: let through, counted as unavailable
            await limits.check_api("rider:down")
        assert limits.unavailable._value.get() >= 1
        await redis.start()
        # The first command after the restart may still meet a dead pooled connection (let
        # through, like any failure); wait, bounded, until the limiter reaches Redis again.
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            limits._skip_until = 0.0
            missed = limits.unavailable._value.get()
            await limits.check_api("rider:probe")
            if limits.unavailable._value.get() == missed:
                break
            assert asyncio.get_running_loop().time() < deadline, "Redis never reached again"
            await asyncio.sleep(0.05)
        await limits.check_api("rider:up")
        await limits.check_api("rider:up")
        with pytest.raises(RateLimited):
            await limits.check_api("rider:up")
    finally:
        await limits.close()
        redis.stop()


# --- tokens -----------------------------------------------------------------------------------


async def test_a_fresh_token_and_revoking_the_one_in_use(settings: Settings) -> None:
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    async with serve(settings) as one, serve(settings) as two:
        driver = await make_driver(one.http, admin)
        issued = await one.http.post("/v1/tokens", headers=driver.headers)
        assert issued.status_code == 201
        body = issued.json()
        assert body["role"] == "driver" and body["expires_at"] is not None
        fresh = {"Authorization": f"Bearer {body['token']}"}
        assert (await two.http.get("/v1/drivers/me", headers=fresh)).json()["id"] == str(driver.id)

        # A socket opened with the old token on one worker, revoked through the other.
        socket = await connect(
            one.ws_url(f"/v1/ws/driver?token={driver.token}"), open_timeout=5, ping_interval=None
        )
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "hello"
        revoked = await two.http.delete("/v1/tokens/current", headers=driver.headers)
        assert revoked.status_code == 204
        assert (await one.http.get("/v1/drivers/me", headers=driver.headers)).status_code == 401
        assert await wait_closed(socket) == CLOSE_TOKEN_REVOKED
        # What it minted goes with it (tests below: the attack this stops).
        assert (await one.http.get("/v1/drivers/me", headers=fresh)).status_code == 401
        # Revoked stays revoked; a revoked token cannot revoke or issue either.
        assert (
            await one.http.delete("/v1/tokens/current", headers=driver.headers)
        ).status_code == 401
        assert (await one.http.post("/v1/tokens", headers=driver.headers)).status_code == 401


async def test_tokens_expire_after_the_ttl(settings: Settings, engine: AsyncEngine) -> None:
    async with serve(settings, token_ttl_days=1.0) as one:
        rider = await make_rider(one.http)
        issued = (await one.http.post("/v1/tokens", headers=rider.headers)).json()
        assert issued["expires_at"] is not None
        assert (await one.http.post("/v1/tokens", headers=rider.headers)).status_code == 201
        async with engine.begin() as connection:  # the account's first token is two days old
            await connection.execute(
                text(
                    "UPDATE auth_token SET created_at = now() - interval '2 days' "
                    "WHERE subject_id = :id AND expires_at IS NULL"
                ),
                {"id": rider.id},
            )
        response = await one.http.post("/v1/tokens", headers=rider.headers)
        assert response.status_code == 401
        assert response.json()["type"] == "unauthorized"
        fresh = {"Authorization": f"Bearer {issued['token']}"}
        assert (await one.http.post("/v1/tokens", headers=fresh)).status_code == 201


async def test_an_open_socket_closes_when_its_token_expires(
    settings: Settings, app: FastAPI
) -> None:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
        rider = await make_rider(http)
    async with app.state.sessionmaker() as session:
        token = await issue_token(
            session=session,
            role=Role.rider,
            subject_id=rider.id,
            expires_at=utcnow() + timedelta(seconds=1.5),
        )
        await session.commit()
    async with live_server(app) as base_url:
        url = base_url.replace("http://", "ws://") + "/v1/ws/rider"
        socket = await connect(
            url, additional_headers={"Authorization": f"Bearer {token}"}, ping_interval=None
        )
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "hello"
        assert await wait_closed(socket, within_s=10) == CLOSE_TOKEN_REVOKED


async def test_the_bootstrap_token_expires_a_day_after_real_admins_exist(
    settings: Settings, client: AsyncClient, engine: AsyncEngine
) -> None:
    bootstrap = {"Authorization": f"Bearer {settings.admin_token}"}
    assert (await client.delete("/v1/tokens/current", headers=bootstrap)).status_code == 403
    issued = await client.post("/v1/tokens", headers=bootstrap)
    assert issued.status_code == 201 and issued.json()["role"] == "admin"
    personal = {"Authorization": f"Bearer {issued.json()['token']}"}
    await make_driver(client, personal)
    await make_driver(client, bootstrap)  # within the day: both work
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE auth_token SET created_at = now() - interval '25 hours' "
                "WHERE role = 'admin'"
            )
        )
    response = await client.get("/v1/support-cases", headers=bootstrap)
    assert response.status_code == 401
    assert (await client.get("/v1/support-cases", headers=personal)).status_code == 200
    # The personal admin's next token is the same admin's.
    again = (await client.post("/v1/tokens", headers=personal)).json()
    assert again["role"] == "admin"
    # Once no personal admin token is left, the bootstrap token is the way back in. (Revoking
    # the first revokes the one it minted.)
    assert (await client.delete("/v1/tokens/current", headers=personal)).status_code == 204
    again_headers = {"Authorization": f"Bearer {again['token']}"}
    assert (await client.delete("/v1/tokens/current", headers=again_headers)).status_code == 401
    assert (await client.get("/v1/support-cases", headers=bootstrap)).status_code == 200


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_tokens_minted_with_a_stolen_token_die_with_it(settings: Settings) -> None:
    """Round two, finding 5: whoever holds a token mints new ones; revoking the stolen token
    used to leave them valid."""
    async with serve(settings) as one, serve(settings) as two:
        driver = await make_driver(one.http, bearer(settings.admin_token))
        # The thief, holding the driver's token, mints two generations on another worker and
        # opens a socket with the youngest.
        child = (await two.http.post("/v1/tokens", headers=driver.headers)).json()["token"]
        grandchild = (await two.http.post("/v1/tokens", headers=bearer(child))).json()["token"]
        socket = await connect(
            two.ws_url("/v1/ws/driver"), additional_headers=bearer(grandchild), ping_interval=None
        )
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "hello"

        # The owner sees every token of the account, and how each was minted; never a secret.
        listed = await one.http.get("/v1/tokens", headers=driver.headers)
        assert listed.status_code == 200
        tokens = listed.json()
        assert [t["current"] for t in tokens] == [True, False, False]
        assert [t["minted_by"] for t in tokens] == [None, tokens[0]["id"], tokens[1]["id"]]
        assert all(t["expires_at"] for t in tokens)
        for secret in (driver.token, child, grandchild):
            assert secret not in listed.text
            assert hashlib.sha256(secret.encode()).hexdigest() not in listed.text

        revoked = await one.http.delete("/v1/tokens/current", headers=driver.headers)
        assert revoked.status_code == 204
        for token in (driver.token, child, grandchild):
            assert (await two.http.get("/v1/drivers/me", headers=bearer(token))).status_code == 401
        assert await wait_closed(socket) == CLOSE_TOKEN_REVOKED


async def test_revoking_all_of_ones_tokens_leaves_one_new_token(settings: Settings) -> None:
    async with serve(settings) as one:
        admin = bearer(settings.admin_token)
        driver = await make_driver(one.http, admin)
        rider = await make_rider(one.http)
        # Two families of the driver's: the first token's, and a thief's child of it.
        stolen = (await one.http.post("/v1/tokens", headers=driver.headers)).json()["token"]
        socket = await connect(
            one.ws_url("/v1/ws/driver"), additional_headers=bearer(stolen), ping_interval=None
        )
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "hello"

        reset = await one.http.delete("/v1/tokens", headers=driver.headers)
        assert reset.status_code == 200, reset.text
        body = reset.json()
        assert body["revoked"] == 2 and body["replacement"]["role"] == "driver"
        for token in (driver.token, stolen):
            assert (await one.http.get("/v1/drivers/me", headers=bearer(token))).status_code == 401
        assert await wait_closed(socket) == CLOSE_TOKEN_REVOKED
        fresh = bearer(body["replacement"]["token"])
        assert (await one.http.get("/v1/drivers/me", headers=fresh)).json()["id"] == str(driver.id)
        [own] = (await one.http.get("/v1/tokens", headers=fresh)).json()
        assert own["current"] and own["minted_by"] is None
        export = (await one.http.get("/v1/drivers/me/export", headers=fresh)).json()
        assert sum(1 for t in export["access_tokens"] if t["revoked_at"]) == 2
        # Another account's tokens are untouched; the bootstrap token has none to revoke.
        assert (await one.http.get("/v1/riders/me", headers=rider.headers)).status_code == 200
        assert (await one.http.delete("/v1/tokens", headers=admin)).status_code == 403
        assert (await one.http.get("/v1/tokens", headers=admin)).status_code == 403


async def test_an_operator_revokes_every_token_of_an_account(settings: Settings) -> None:
    async with serve(settings) as one:
        admin = bearer(settings.admin_token)
        driver = await make_driver(one.http, admin)
        other = await make_driver(one.http, admin)
        child = (await one.http.post("/v1/tokens", headers=driver.headers)).json()["token"]
        socket = await connect(
            one.ws_url("/v1/ws/driver"), additional_headers=driver.headers, ping_interval=None
        )
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "hello"
        path = f"/v1/accounts/{driver.id}/tokens"
        refused = await one.http.delete(path, headers=other.headers)
        assert refused.status_code == 403 and refused.json()["type"] == "forbidden"

        revoked = await one.http.delete(path, headers=admin)
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked"] == 2
        for token in (driver.token, child):
            assert (await one.http.get("/v1/drivers/me", headers=bearer(token))).status_code == 401
        assert await wait_closed(socket) == CLOSE_TOKEN_REVOKED
        assert (await one.http.get("/v1/drivers/me", headers=other.headers)).status_code == 200
        # Audited, in the public log that names no one.
        entries = (await one.http.get("/v1/audit")).json()
        [entry] = [e for e in entries if e["kind"] == "account_tokens_revoked"]
        assert entry["seq"] == revoked.json()["audit_seq"]
        assert str(driver.id) not in json.dumps(entry)


async def test_changing_the_bootstrap_token_revokes_the_personal_admin_tokens_it_minted(
    settings: Settings,
) -> None:
    """A personal admin token minted with a leaked bootstrap token used to outlive the change of
    COOP_ADMIN_TOKEN that answers the leak."""
    async with serve(settings) as old:
        leaked = bearer(settings.admin_token)
        personal = (await old.http.post("/v1/tokens", headers=leaked)).json()["token"]
        minted = (await old.http.post("/v1/tokens", headers=bearer(personal))).json()["token"]
        for token in (personal, minted):
            assert (await old.http.get("/v1/support-cases", headers=bearer(token))).is_success
    rotated = "Kk5zsZF_n6AJNW4MS3lG93S5XxHNa4Z8j9Tgq9wGfLI"
    async with serve(settings, admin_token=rotated) as new:
        for token in (personal, minted, settings.admin_token):
            refused = await new.http.get("/v1/support-cases", headers=bearer(token))
            assert refused.status_code == 401, token
        # The new bootstrap token works at once: no live personal admin token is its.
        assert (await new.http.get("/v1/support-cases", headers=bearer(rotated))).is_success


async def test_a_personal_admin_token_past_its_ttl_locks_no_one_out(
    settings: Settings, client: AsyncClient, engine: AsyncEngine
) -> None:
    """With tokens expiring by default, an old personal admin token that expired by its age
    alone must not keep the bootstrap token refused, or no admin token would work at all."""
    bootstrap = bearer(settings.admin_token)
    personal = (await client.post("/v1/tokens", headers=bootstrap)).json()["token"]
    async with engine.begin() as connection:  # issued before expiry dates were recorded
        await connection.execute(
            text(
                "UPDATE auth_token SET created_at = now() - interval '31 days', expires_at = NULL"
                " WHERE role = 'admin'"
            )
        )
    assert (await client.get("/v1/support-cases", headers=bearer(personal))).status_code == 401
    assert (await client.get("/v1/support-cases", headers=bootstrap)).status_code == 200


async def test_tokens_expire_by_default_and_are_renewed_by_minting(
    settings: Settings, engine: AsyncEngine
) -> None:
    assert Settings.model_fields["token_ttl_days"].default == 30
    async with serve(settings, token_ttl_days=30.0) as one:
        rider = await make_rider(one.http)
        renewed = (await one.http.post("/v1/tokens", headers=rider.headers)).json()
        async with engine.begin() as connection:  # the sign-up token is 31 days old
            await connection.execute(
                text(
                    "UPDATE auth_token SET created_at = now() - interval '31 days' "
                    "WHERE subject_id = :id AND parent_hash IS NULL"
                ),
                {"id": rider.id},
            )
        assert (await one.http.get("/v1/riders/me", headers=rider.headers)).status_code == 401
        # The renewed token outlives the one it was minted with: expiry is not revocation.
        fresh = bearer(renewed["token"])
        assert (await one.http.get("/v1/riders/me", headers=fresh)).status_code == 200


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (DEV_ADMIN_TOKEN, "development default"),
        ("x" * 40, "repeated character"),
        ("s3cret-but-short-0123456789", "at least 32"),
        ("ab" * 20, "at least 8 different"),
        ("abcdefgh" * 5, "too predictable"),
        ("k" + "Zq8-" * 10, "at least 8 different"),
        ("Zq8-Kp3!" * 5, "too predictable"),
        ("Zq8-Kp3!wX" * 4, "too predictable"),
        ("abcdefghijklmnopqrstuvwxyz0123456789", "too predictable"),
        ("2468" + "13579" * 8, "too predictable"),
    ],
)
def test_production_refuses_a_weak_admin_token(token: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Settings(env="production", admin_token=token)
    Settings(env="dev", admin_token=token)  # development takes anything


def test_production_takes_a_random_admin_token() -> None:
    # As `secrets.token_urlsafe(32)` and `openssl rand -hex 16` make them.
    for token in (
        "Kk5zsZF_n6AJNW4MS3lG93S5XxHNa4Z8j9Tgq9wGfLI",
        "febb7db2211d92fcb744fbfa514cf5c1",
    ):
        registered = {"gst": "123456789RT0001", "qst": "1234567890TQ0001"}
        production = Settings(env="production", admin_token=token, tax_registrations=registered)
        assert production.env == "production"


# --- the whole API, fuzzed ---------------------------------------------------------------------

# In the suite: the same cases on every run (a fixed seed, a fixed number of examples, no time
# budget, no example database), so a commit passes or fails for what it is. `make fuzz` runs the
# open-ended search (test_fuzz_the_whole_api); each case it finds becomes an explicit test
# (tests/dispatch/test_fuzz_findings.py).
EXAMPLES_PER_OPERATION = 3
SEED = 20261130
FUZZ_EXAMPLES_PER_OPERATION = 200


async def _schemathesis(
    base_url: str,
    token: str | None,
    report: Path,
    *,
    seed: int,
    examples: int,
    max_time_s: int | None = None,
) -> tuple[int, str]:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance",
        "--max-examples",
        str(examples),
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        str(seed),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        # Revoking the caller's own tokens would leave the rest of its run unauthenticated.
        "--exclude-path",
        "/v1/tokens/current",
        "--exclude-name",
        "DELETE /v1/tokens",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
    ]
    if max_time_s is None:
        command.append("--no-shrink")
    else:
        # Fuzzing repeats until the budget is spent: a search, not a test.
        command += ["--max-time", str(max_time_s)]
    if token is not None:
        command += ["--header", f"Authorization: Bearer {token}"]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), (max_time_s or 60) * 4)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def _fuzz_as_every_caller(
    service: ServiceProcess, settings: Settings, tmp_path: Path, **run: Any
) -> dict[str, str]:
    """Schemathesis as an anonymous caller, a rider, a driver and the admin at once; what each
    failed run printed, by caller."""
    base = service.base_url
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    async with AsyncClient(base_url=base) as http:
        rider = await make_rider(http)
        driver = await make_driver(http, admin)
    callers = {
        "anonymous": None,
        "rider": rider.token,
        "driver": driver.token,
        "admin": settings.admin_token,
    }
    results = await asyncio.gather(
        *(
            _schemathesis(base, token, tmp_path / f"{name}.xml", **run)
            for name, token in callers.items()
        )
    )
    return {
        name: output[-6000:]
        for name, (code, output) in zip(callers, results, strict=True)
        if code != 0
    }


# Its cases are fixed, its time is not: a loaded machine (CI's two cores) needs more than the
# suite's default 120 s for four callers over every operation.
@pytest.mark.timeout(400)
async def test_no_input_makes_a_server_error(
    real_service: ServiceProcess, settings: Settings, tmp_path: Path
) -> None:
    """Schemathesis over /openapi.json against the real service: whatever it sends, no answer is
    a 5xx, and every status answered is one the document names for that route. Seeded and
    bounded by a number of examples per operation, so every run sends the same cases."""
    failed = await _fuzz_as_every_caller(
        real_service, settings, tmp_path, seed=SEED, examples=EXAMPLES_PER_OPERATION
    )
    assert not failed, "\n\n".join(f"--- {name}\n{output}" for name, output in failed.items())


@pytest.mark.fuzz
async def test_fuzz_the_whole_api(
    real_service: ServiceProcess, settings: Settings, tmp_path: Path
) -> None:
    """`make fuzz`: the same checks with a new seed (or FUZZ_SEED), many more examples, and
    FUZZ_SECONDS per caller. The seed is printed first, so any run can be replayed."""
    seed = int(os.environ.get("FUZZ_SEED") or secrets.randbelow(2**31))
    seconds = int(os.environ.get("FUZZ_SECONDS") or 300)
    print(f"\nfuzz: seed {seed}, {seconds} s per caller (replay: make fuzz FUZZ_SEED={seed})")
    failed = await _fuzz_as_every_caller(
        real_service,
        settings,
        tmp_path,
        seed=seed,
        examples=FUZZ_EXAMPLES_PER_OPERATION,
        max_time_s=seconds,
    )
    assert not failed, (
        f"seed {seed}: add each case below to tests/dispatch/test_fuzz_findings.py\n\n"
        + "\n\n".join(f"--- {name}\n{output}" for name, output in failed.items())
    )


# --- the real service in its own process: logs, bodies, operators' endpoints ------------------


@pytest.fixture(scope="module")
def real_service(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """`python -m server serve` as deployed behind a proxy on this machine: loopback is the
    trusted proxy, and only 10.9.9.0/24 may read the metrics without the admin token."""
    log = tmp_path_factory.mktemp("service") / "service.log"
    service = service_process(
        base_settings,
        log,
        COOP_TRUSTED_PROXIES="127.0.0.1",
        COOP_METRICS_ALLOW="10.9.9.0/24",
        COOP_LOG_LEVEL="INFO",
    )
    with service:
        service.wait_ready()
        yield service


async def test_no_token_is_ever_written_to_the_log(
    real_service: ServiceProcess, settings: Settings
) -> None:
    base = real_service.base_url
    async with AsyncClient(base_url=base) as http:
        admin = {"Authorization": f"Bearer {settings.admin_token}"}
        driver = await make_driver(http, admin)
        rider = await make_rider(http)
        # A token in the query string of a socket (browsers cannot set headers), accepted and
        # refused; in the query string and header of HTTP requests; a wrong one too.
        url = base.replace("http://", "ws://") + f"/v1/ws/driver?token={driver.token}"
        async with connect(url, ping_interval=None) as connection:
            assert json.loads(await asyncio.wait_for(connection.recv(), 5))["type"] == "hello"
        # The parameter's name percent-encoded: the handshake decodes it, and so does the log.
        encoded = base.replace("http://", "ws://") + f"/v1/ws/driver?x=1&%74oken={driver.token}"
        async with connect(encoded, ping_interval=None) as connection:
            assert json.loads(await asyncio.wait_for(connection.recv(), 5))["type"] == "hello"
        wrong = "wrong" + uuid.uuid4().hex
        with pytest.raises(InvalidStatus):
            async with connect(base.replace("http://", "ws://") + f"/v1/ws/rider?token={wrong}"):
                pass
        await http.get(f"/v1/drivers/me?token={rider.token}&x=1", headers=rider.headers)
        await http.get("/v1/drivers/me", headers={"Authorization": f"Bearer {wrong}"})
        marker = f"/v1/end-of-log-test-{uuid.uuid4().hex}"
        await http.get(marker)
    log = await text_with(real_service.log_path, marker)
    for secret in (driver.token, rider.token, wrong, settings.admin_token):
        assert secret not in log
    assert "/v1/ws/driver?token=[redacted]" in log  # uvicorn's access line, redacted
    assert "/v1/ws/driver?x=1&%74oken=[redacted]" in log


HUNG_UP = 0


async def _upload(port: int, *, chunked: bool, total: int, send: bool = True) -> tuple[int, int]:
    """Sends a body of up to `total` bytes to POST /v1/trips without a token, stopping as soon
    as the server answers or hangs up; answers (status, bytes sent). A server that hangs up on
    a client still sending makes its kernel reset the connection, which may discard the answer
    already on its way: that counts as `HUNG_UP`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = "POST /v1/trips HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {total}\r\n\r\n"
    writer.write(head.encode())
    chunk = b"[" + b"1," * 32767 + b"1"
    answer = asyncio.ensure_future(reader.read(65536))
    sent = 0
    try:
        while send and sent < total and not answer.done():
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
            await writer.drain()
            sent += len(chunk)
    except (ConnectionError, OSError):
        pass
    try:
        first = await asyncio.wait_for(answer, 30)
    except (ConnectionError, OSError):
        first = b""
    writer.close()
    return (int(first.split(b" ", 2)[1]) if first else HUNG_UP), sent


async def test_huge_bodies_are_refused_unread_and_memory_stays_flat(
    real_service: ServiceProcess, settings: Settings
) -> None:
    assert real_service.process is not None
    process = psutil.Process(real_service.process.pid)
    port = real_service.port
    # 200 MB announced: refused on the headers alone, before any of it is sent.
    status, _ = await _upload(port, chunked=False, total=200_000_000, send=False)
    assert status == 413
    before = process.memory_info().rss
    results = await asyncio.gather(
        *(_upload(port, chunked=chunked, total=200_000_000) for chunked in [True] * 5 + [False])
    )
    after = process.memory_info().rss
    assert all(status in {413, HUNG_UP} for status, _ in results), results
    # Unread: each upload was cut off long before its 200 MB (the server hung up at 64 KiB;
    # what was sent is what the kernels' buffers took meanwhile).
    assert all(sent < 50_000_000 for _, sent in results), results
    assert after - before < 40_000_000, (before, after)
    async with AsyncClient(base_url=real_service.base_url) as http:
        assert (await http.get("/healthz")).status_code == 200


async def test_a_chunked_body_over_the_limit_is_413_problem_details(app: FastAPI) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(100):  # 6.5 MB, no Content-Length
            yield b" " * 65536

    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
        response = await http.post(
            "/v1/riders", content=body(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "payload_too_large"
        assert "x-request-id" in response.headers
        declared = await http.post("/v1/trips", content=b"{" + b" " * 70_000 + b"}")
        assert declared.status_code == 413 and declared.json()["type"] == "payload_too_large"
        small = await http.post("/v1/riders", json={"name": "Fits " + "x" * 100})
        assert small.status_code == 201


async def test_metrics_and_readiness_detail_are_for_operators(
    real_service: ServiceProcess, settings: Settings
) -> None:
    outside = {"X-Forwarded-For": "203.0.113.5"}
    operators = {"X-Forwarded-For": "10.9.9.9"}
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    async with AsyncClient(base_url=real_service.base_url) as http:
        refused = await http.get("/metrics", headers=outside)
        assert refused.status_code == 403 and refused.json()["type"] == "forbidden"
        assert (await http.get("/metrics")).status_code == 403  # loopback is not on the list
        assert (await http.get("/metrics", headers=operators)).status_code == 200
        assert "coop_http_requests_total" in (await http.get("/metrics", headers=admin)).text
        ready = await http.get("/readyz", headers=outside)
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        detailed = (await http.get("/readyz", headers=operators)).json()
        assert detailed["checks"] == {"database": "ok", "redis": "ok"}
        assert "checks" in (await http.get("/readyz", headers={**outside, **admin})).json()


async def test_metrics_default_to_loopback(settings: Settings, app: FastAPI) -> None:
    local = ASGITransport(app=app, client=("127.0.0.1", 5000))
    remote = ASGITransport(app=app, client=("198.51.100.20", 5000))
    async with AsyncClient(transport=local, base_url="http://t") as http:
        assert (await http.get("/metrics")).status_code == 200
    async with AsyncClient(transport=remote, base_url="http://t") as http:
        assert (await http.get("/metrics")).status_code == 403
        assert (await http.get("/readyz")).json() == {"status": "ready"}


async def test_openapi_has_bearer_auth_and_each_routes_problems(client: AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from account creation or POST /v1/tokens, or the admin token",
    }
    paths = document["paths"]
    me = paths["/v1/drivers/me"]["get"]
    assert me["security"] == [{"bearer": []}]
    assert {"401", "403", "429"} <= set(me["responses"])
    assert "Retry-After" in me["responses"]["429"]["headers"]
    accept = paths["/v1/offers/{offer_id}/accept"]["post"]
    assert {"401", "403", "404", "409", "422", "429"} <= set(accept["responses"])
    signup = paths["/v1/riders"]["post"]
    assert "security" not in signup
    assert {"413", "422", "429"} <= set(signup["responses"])
    problem = signup["responses"]["422"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem"}
    assert "security" not in paths["/v1/agreements/current"]["get"]
