"""The operators' pages (`/admin`) over HTTP, as an operator, a member and a hostile visitor
would try them, each action then checked through the API: finding accounts (accents and case
aside, paged), registering a driver, recording a status decision (two operators at once), the
qualification, a recovery link and revoking tokens; refusals, bad input and CSRF."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from coop.audit import AuditEntry
from coop.auth import AuthToken, Role
from coop.search import FOLD_FROM, fold
from coop.settings import Settings
from drivers.models import Driver
from riders.models import Rider
from server.simulator import registration
from tests.builders import local_today, make_driver, make_rider
from tests.web.pages import FR, csrf_of, sign_in, text_of

UNKNOWN = "00000000-0000-4000-8000-000000000000"


async def _operator(app: FastAPI, settings: Settings) -> AsyncClient:
    browser = AsyncClient(transport=ASGITransport(app=app), base_url="http://test")
    await sign_in(browser, settings.admin_token)
    return browser


async def _csrf(browser: AsyncClient, path: str = "/admin") -> str:
    page = await browser.get(path)
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


async def _kinds(app: FastAPI) -> list[str]:
    """The audit log's entries since the app put the founding agreement in force."""
    async with app.state.sessionmaker() as session:
        kinds = await session.scalars(select(AuditEntry.kind).order_by(AuditEntry.seq))
        return [kind for kind in kinds if kind != "agreement.version"]


def _registration(person: str, number: str, **extra: str) -> dict[str, str]:
    today = local_today()
    facts = registration.qualification(7, today)
    car = registration.vehicle(7, today, plate="GHJ 451", owner=person)
    form = {
        "name": person,
        "member_number": number,
        "vehicle.plate": car["plate"],
        "vehicle.seats": "4",
        "vehicle.vin": car["vin"],
        "vehicle.make": car["make"],
        "vehicle.model": car["model"],
        "vehicle.year": str(car["year"]),
        "vehicle.owner": person,
        "vehicle.odometer_km": "30000",
        "qualification.licence_number": facts["licence_number"],
        "qualification.training_certificate_on": facts["training_certificate_on"],
        "qualification.record_check_on": facts["record_check_on"],
        "qualification.record_check_clear": "true",
        "qualification.authorization_expires_on": facts["authorization_expires_on"],
    }
    form.update(extra)
    return form


async def test_an_operator_finds_accounts_by_a_part_of_the_name_accents_and_case_aside(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    eloise = await make_driver(client, admin_headers, name="Éloïse Côté", member_number="M-77")
    rider = await make_rider(client, "ELOISE Nguyễn")
    await make_rider(client, "Zoé Tremblay")

    found = await client.get("/v1/accounts", params={"q": "eloïse"}, headers=admin_headers)
    assert found.status_code == 200, found.text
    rows = found.json()
    assert [(row["name"], row["kind"]) for row in rows] == [
        ("Éloïse Côté", "driver"),
        ("ELOISE Nguyễn", "rider"),
    ]
    assert rows[0]["status"] == "active" and rows[0]["member_number"] == "M-77"
    assert rows[1]["status"] is None
    # "nguyen" finds "Nguyễn"; a member number and an id find their account alone.
    by_part = await client.get("/v1/accounts", params={"q": "NGUYEN"}, headers=admin_headers)
    assert [row["id"] for row in by_part.json()] == [str(rider.id)]
    by_number = await client.get("/v1/accounts", params={"q": "M-77"}, headers=admin_headers)
    assert [row["id"] for row in by_number.json()] == [str(eloise.id)]
    by_id = await client.get("/v1/accounts", params={"q": str(rider.id)}, headers=admin_headers)
    assert [row["kind"] for row in by_id.json()] == ["rider"]
    drivers_only = await client.get(
        "/v1/accounts", params={"q": "eloise", "kind": "driver"}, headers=admin_headers
    )
    assert [row["id"] for row in drivers_only.json()] == [str(eloise.id)]
    # A `%` or `_` typed is a character, not a wildcard.
    assert (await client.get("/v1/accounts?q=%25", headers=admin_headers)).json() == []
    assert (await client.get("/v1/accounts?q=_", headers=admin_headers)).json() == []

    # The page shows the same, and the account's page its kind, status and figures.
    operator = await _operator(app, settings)
    page = await operator.get("/admin", params={"q": "ELOISE"})
    words = text_of(page.text)
    assert "Éloïse Côté" in words and "ELOISE Nguyễn" in words and "Zoé" not in words
    account = await operator.get(f"/admin/accounts/{eloise.id}")
    words = text_of(account.text)
    assert "Driver (member)" in words and "Active" in words and "M-77" in words
    assert "Every item the law requires is valid: the law lets" in words
    french = await operator.get(f"/admin/accounts/{rider.id}", headers=FR)
    assert "Compte de personne passagère" in text_of(french.text)
    await operator.aclose()


async def test_the_accounts_page_lists_the_renewals_due_soonest_first(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    soon = await make_driver(client, admin_headers, name="Renée Soon")
    await make_driver(client, admin_headers, name="Later Person")
    today = local_today()
    facts = registration.qualification(3, today)
    facts["authorization_expires_on"] = (today + timedelta(days=10)).isoformat()
    recorded = await client.put(
        f"/v1/drivers/{soon.id}/qualification", json=facts, headers=admin_headers
    )
    assert recorded.status_code == 200
    api = await client.get("/v1/drivers/qualifications/expiring", headers=admin_headers)
    assert [(r["driver_name"], r["item"]) for r in api.json()] == [("Renée Soon", "authorization")]
    operator = await _operator(app, settings)
    page = await operator.get("/admin")
    section = text_of(page.text.split('id="renewals"')[1])
    assert "Renée Soon" in section and "Later Person" not in section
    assert f'href="/admin/accounts/{soon.id}#qualification"' in page.text
    await operator.aclose()


async def test_the_search_pages_through_every_account_once_in_name_order(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    names = ["Ana", "Ángel", "anaïs", "Bruno", "Chloé", "Dmitri", "Émile", "Zacharie"]
    for index, name in enumerate(names):
        if index % 2:
            await make_driver(client, admin_headers, name=name)
        else:
            await make_rider(client, name)
    seen: list[str] = []
    url: str | None = "/v1/accounts?limit=3"
    while url:
        page = await client.get(url, headers=admin_headers)
        assert page.status_code == 200
        assert len(page.json()) <= 3
        seen += [row["name"] for row in page.json()]
        cursor = page.headers.get("x-next-cursor")
        url = f"/v1/accounts?limit=3&cursor={cursor}" if cursor else None
    assert seen == ["Ana", "anaïs", "Ángel", "Bruno", "Chloé", "Dmitri", "Émile", "Zacharie"]
    forged = await client.get("/v1/accounts?cursor=abc", headers=admin_headers)
    assert forged.status_code == 422

    # The page's pager follows the same pages, each account once.
    operator = await _operator(app, settings)
    shown: list[str] = []
    path: str | None = "/admin?per_page=3"
    while path:
        page = await operator.get(path)
        assert page.status_code == 200
        shown += [
            text_of(chunk.split("</a>")[0])
            for chunk in page.text.split('<h3><a href="/admin/accounts/')[1:]
        ]
        marker = 'rel="next"'
        path = None
        if marker in page.text:
            link = page.text.split(marker)[0].rsplit('href="', 1)[1].split('"')[0]
            path = link.replace("&amp;", "&")
    assert [name.split(">", 1)[-1].strip() for name in shown] == seen
    await operator.aclose()


async def test_only_operators_reach_the_pages_and_the_search(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers, committee=True, reviewer=True)
    for account in (rider, driver):
        assert (await client.get("/v1/accounts", headers=account.headers)).status_code == 403
        target = f"/v1/accounts/{driver.id}"
        assert (await client.get(target, headers=account.headers)).status_code == 403
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as b:
            await sign_in(b, account.token)
            me = await b.get("/me")
            assert 'href="/admin"' not in me.text
            for path in ("/admin", f"/admin/accounts/{rider.id}", "/admin/drivers/new"):
                refused = await b.get(path)
                assert refused.status_code == 403, path
                assert "Your account is not allowed to do this." in text_of(refused.text)
            # A member who guesses the forms' addresses is refused before anything is done.
            csrf = csrf_of(me.text)
            posted = await b.post(
                f"/admin/accounts/{driver.id}/status",
                data={"status": "inactive", "reason": "guessing", "csrf": csrf},
            )
            assert posted.status_code == 403
            posted = await b.post(
                f"/admin/accounts/{rider.id}/tokens", data={"confirm": "yes", "csrf": csrf}
            )
            assert posted.status_code == 403
    assert (await client.get("/v1/riders/me", headers=rider.headers)).status_code == 200
    changes = await client.get(f"/v1/drivers/{driver.id}/status-changes", headers=admin_headers)
    assert changes.json() == []
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as anonymous:
        assert (await anonymous.get("/admin")).status_code == 401
    assert (await client.get("/v1/accounts")).status_code == 401


async def test_an_operator_registers_a_driver_who_then_uses_the_api(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    operator = await _operator(app, settings)
    csrf = await _csrf(operator, "/admin/drivers/new")
    form = _registration("Mireille Baptiste", "M-4410", reviewer="on")
    registered = await operator.post("/admin/drivers", data={**form, "csrf": csrf})
    assert registered.status_code == 200, registered.text
    words = text_of(registered.text)
    assert "Give this to the person; it is shown once" in words
    token = registered.text.split('id="once-value"')[1].split('value="')[1].split('"')[0]
    me = await client.get("/v1/drivers/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["name"] == "Mireille Baptiste" and me.json()["reviewer"] is True
    assert me.json()["committee"] is False
    standing = await client.get(
        f"/v1/drivers/{me.json()['id']}/qualification", headers=admin_headers
    )
    assert standing.json()["eligible"] is True
    # As the API, a registration is not in the audit log (docs/jurisdiction.md).
    assert await _kinds(app) == []
    await operator.aclose()


async def test_a_bad_registration_is_named_on_the_page_with_the_form_kept(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    existing = await make_driver(client, admin_headers, member_number="M-1")
    operator = await _operator(app, settings)
    csrf = await _csrf(operator, "/admin/drivers/new")
    tomorrow = (local_today() + timedelta(days=1)).isoformat()
    cases: list[tuple[dict[str, str], str, str]] = [
        ({"name": ""}, 'id="f-name-error"', "Field required"),
        ({"vehicle.seats": "0"}, 'id="f-vehicle-seats-error"', "greater than or equal to 1"),
        (
            {"qualification.training_certificate_on": tomorrow},
            'id="f-qualification-training_certificate_on-error"',
            "A certificate cannot be dated after today.",
        ),
        (
            {"qualification.record_check_clear": ""},
            "record_check_on and record_check_clear go together",
            "record_check_on and record_check_clear go together",
        ),
        ({"member_number": "M-1"}, 'id="f-member_number-error"', "is registered already"),
    ]
    for change, marker, reason in cases:
        form = _registration("Paul Arsenault", "M-9", **change)
        answer = await operator.post("/admin/drivers", data={**form, "csrf": csrf})
        assert answer.status_code == 200, (change, answer.status_code)
        assert marker in answer.text, change
        assert reason in text_of(answer.text), change
        # What was typed is kept.
        assert 'value="GHJ 451"' in answer.text
        assert "shown once" not in answer.text
    french = await operator.post(
        "/admin/drivers",
        data={**_registration("P", "M-9", **{"vehicle.seats": "9"}), "csrf": csrf},
        headers=FR,
    )
    assert "Input should be" not in french.text
    found = await client.get("/v1/accounts", params={"kind": "driver"}, headers=admin_headers)
    assert [row["id"] for row in found.json()] == [str(existing.id)]
    await operator.aclose()


async def test_a_status_decision_on_the_page_is_the_apis_recorded_decision(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    driver = await make_driver(client, admin_headers, name="Karim")
    operator = await _operator(app, settings)
    path = f"/admin/accounts/{driver.id}"
    csrf = await _csrf(operator, path)
    empty = await operator.post(
        f"{path}/status", data={"status": "inactive", "reason": "   ", "csrf": csrf}
    )
    assert empty.status_code == 200
    assert 'id="status-error"' in empty.text
    changes = await client.get(f"/v1/drivers/{driver.id}/status-changes", headers=admin_headers)
    assert changes.json() == []

    reason = "Asked to pause his membership for three months (letter of Dec 1)."
    decided = await operator.post(
        f"{path}/status", data={"status": "inactive", "reason": reason, "csrf": csrf}
    )
    assert decided.status_code == 303
    changes = await client.get(f"/v1/drivers/{driver.id}/status-changes", headers=admin_headers)
    assert [(c["from_status"], c["to_status"], c["reason"]) for c in changes.json()] == [
        ("active", "inactive", reason)
    ]
    assert await _kinds(app) == ["driver_status_change"]
    page = await operator.get(decided.headers["location"])
    words = text_of(page.text)
    assert "The decision is recorded" in words and reason in words and "Inactive" in words
    # An unknown driver: the page's refusal, nothing recorded.
    unknown = await operator.post(
        f"/admin/accounts/{UNKNOWN}/status", data={"status": "active", "reason": "x", "csrf": csrf}
    )
    assert unknown.status_code == 404
    await operator.aclose()


async def test_two_operators_deciding_at_once_one_is_recorded_the_other_told(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    driver = await make_driver(client, admin_headers)
    first, second = await _operator(app, settings), await _operator(app, settings)
    path = f"/admin/accounts/{driver.id}"
    csrfs = [await _csrf(first, path), await _csrf(second, path)]
    answers = await asyncio.gather(
        *(
            browser.post(
                f"{path}/status",
                data={"status": "inactive", "reason": f"Decision of operator {n}", "csrf": csrf},
            )
            for n, (browser, csrf) in enumerate(zip((first, second), csrfs, strict=True))
        )
    )
    assert sorted(answer.status_code for answer in answers) == [303, 409]
    refused = next(answer for answer in answers if answer.status_code == 409)
    words = text_of(refused.text)
    assert "another decision was recorded meanwhile" in words
    assert "Yours was not recorded" in words
    changes = (
        await client.get(f"/v1/drivers/{driver.id}/status-changes", headers=admin_headers)
    ).json()
    assert len(changes) == 1
    # The refused page shows the decision that stands, and keeps what was typed.
    assert changes[0]["reason"] in words
    mine = (
        "Decision of operator 0" if changes[0]["reason"].endswith("1") else "Decision of operator 1"
    )
    assert f">{mine}</textarea>" in refused.text
    await first.aclose()
    await second.aclose()


async def test_recording_the_qualification_and_the_car_on_the_page(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    driver = await make_driver(client, admin_headers, qualified=False)
    operator = await _operator(app, settings)
    path = f"/admin/accounts/{driver.id}"
    page = await operator.get(path)
    assert "the driver is offered no trips" in text_of(page.text)
    csrf = csrf_of(page.text)
    facts = _registration("x", "y")
    qualification = {k: v for k, v in facts.items() if k.startswith("qualification.")}
    tomorrow = (local_today() + timedelta(days=1)).isoformat()
    bad = await operator.post(
        f"{path}/qualification",
        data={**qualification, "qualification.record_check_on": tomorrow, "csrf": csrf},
    )
    assert bad.status_code == 200
    assert "A certificate cannot be dated after today." in text_of(bad.text)
    assert f'value="{tomorrow}"' in bad.text
    standing = await client.get(f"/v1/drivers/{driver.id}/qualification", headers=admin_headers)
    assert standing.json()["qualification"] is None
    good = await operator.post(f"{path}/qualification", data={**qualification, "csrf": csrf})
    assert good.status_code == 303
    car = {k: v for k, v in facts.items() if k.startswith("vehicle.")}
    bad_car = await operator.post(
        f"{path}/vehicle", data={**car, "vehicle.vin": "IIIIIIIIIIIIIIIII", "csrf": csrf}
    )
    assert bad_car.status_code == 200 and 'id="f-vehicle-vin-error"' in bad_car.text
    good_car = await operator.post(f"{path}/vehicle", data={**car, "csrf": csrf})
    assert good_car.status_code == 303
    standing = await client.get(f"/v1/drivers/{driver.id}/qualification", headers=admin_headers)
    assert standing.json()["eligible"] is True
    assert await _kinds(app) == ["driver_qualification_recorded", "driver_vehicle_recorded"]
    # The page shows the facts recorded, ready for a renewal.
    page = await operator.get(good_car.headers["location"])
    assert f'value="{qualification["qualification.licence_number"]}"' in page.text
    await operator.aclose()


async def test_a_recovery_link_is_confirmed_shown_once_and_works_once(
    app: FastAPI, client: AsyncClient, settings: Settings
) -> None:
    rider = await make_rider(client, "Lucie")
    operator = await _operator(app, settings)
    path = f"/admin/accounts/{rider.id}/recovery-link"
    confirm = await operator.get(path)
    assert "Only after checking, outside this service" in text_of(confirm.text)
    csrf = csrf_of(confirm.text)
    # Without the confirmation step's answer, it asks again and issues nothing.
    unconfirmed = await operator.post(path, data={"csrf": csrf})
    assert "Only after checking" in text_of(unconfirmed.text)
    assert await _kinds(app) == []
    issued = await operator.post(path, data={"csrf": csrf, "confirm": "yes"})
    assert issued.status_code == 200
    assert "it is shown once" in text_of(issued.text)
    url = issued.text.split('id="once-value"')[1].split('value="')[1].split('"')[0]
    assert url.startswith("http://test/recover/")
    assert await _kinds(app) == ["recovery_link_issued"]
    listed = await operator.get(f"/admin/accounts/{rider.id}")
    assert "not used" in text_of(listed.text)

    link = url.removeprefix("http://test")
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as person:
        page = await person.get(link)
        used = await person.post(link, data={"csrf": csrf_of(page.text)})
        assert used.status_code == 303
        assert "Lucie" in text_of((await person.get("/me")).text)
    listed = await operator.get(f"/admin/accounts/{rider.id}")
    assert "Sign-in links issued in the last 90 days" in text_of(listed.text)
    assert "not used" not in text_of(listed.text) and "; used" in text_of(listed.text)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as thief:
        page = await thief.get(link)
        assert (await thief.post(link, data={"csrf": csrf_of(page.text)})).status_code == 404
    assert (await operator.get(f"/admin/accounts/{UNKNOWN}/recovery-link")).status_code == 404
    refused = await operator.post(
        f"/admin/accounts/{UNKNOWN}/recovery-link", data={"csrf": csrf, "confirm": "yes"}
    )
    assert refused.status_code == 404
    await operator.aclose()


async def test_revoking_tokens_on_the_page_signs_the_account_out_everywhere(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    driver = await make_driver(client, admin_headers)
    second = await client.post("/v1/tokens", headers=driver.headers)
    other = {"Authorization": f"Bearer {second.json()['token']}"}
    operator = await _operator(app, settings)
    path = f"/admin/accounts/{driver.id}/tokens"
    confirm = await operator.get(path)
    assert "Live tokens: 2." in text_of(confirm.text)
    csrf = csrf_of(confirm.text)
    assert "Only after" not in confirm.text
    unconfirmed = await operator.post(path, data={"csrf": csrf})
    assert unconfirmed.status_code == 200
    assert (await client.get("/v1/drivers/me", headers=driver.headers)).status_code == 200
    done = await operator.post(path, data={"csrf": csrf, "confirm": "yes"})
    assert done.status_code == 303
    for headers in (driver.headers, other):
        assert (await client.get("/v1/drivers/me", headers=headers)).status_code == 401
    assert await _kinds(app) == ["account_tokens_revoked"]
    page = await operator.get(done.headers["location"])
    assert "Tokens revoked: 2." in text_of(page.text)
    assert 'id="live-tokens">0<' in page.text
    # A made-up address says nothing was revoked.
    made_up = await operator.get(f"/admin/accounts/{driver.id}?revoked=<b>all</b>")
    assert "Tokens revoked" not in text_of(made_up.text)
    unknown = await operator.post(
        f"/admin/accounts/{UNKNOWN}/tokens", data={"csrf": csrf, "confirm": "yes"}
    )
    assert unknown.status_code == 404
    await operator.aclose()


async def test_every_admin_form_refuses_a_missing_or_foreign_csrf_value(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    driver = await make_driver(client, admin_headers)
    operator = await _operator(app, settings)
    forms: list[tuple[str, dict[str, Any]]] = [
        ("/admin/drivers", _registration("Csrf Person", "M-CSRF")),
        (f"/admin/accounts/{driver.id}/status", {"status": "inactive", "reason": "x"}),
        (f"/admin/accounts/{driver.id}/qualification", {}),
        (f"/admin/accounts/{driver.id}/vehicle", {"vehicle.plate": "A", "vehicle.seats": "2"}),
        (f"/admin/accounts/{driver.id}/recovery-link", {"confirm": "yes"}),
        (f"/admin/accounts/{driver.id}/tokens", {"confirm": "yes"}),
    ]
    for path, data in forms:
        for csrf in ({}, {"csrf": "x" * 43}):
            answer = await operator.post(path, data={**data, **csrf})
            assert answer.status_code == 403, (path, csrf, answer.status_code)
    good = await _csrf(operator)
    foreign = await operator.post(
        f"/admin/accounts/{driver.id}/tokens",
        data={"confirm": "yes", "csrf": good},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert (await client.get("/v1/drivers/me", headers=driver.headers)).status_code == 200
    assert await _kinds(app) == []
    found = await client.get("/v1/accounts", params={"q": "Csrf"}, headers=admin_headers)
    assert found.json() == []
    await operator.aclose()


async def test_an_account_read_over_the_api(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client, "Farah")
    read = await client.get(f"/v1/accounts/{rider.id}", headers=admin_headers)
    assert read.status_code == 200
    body = read.json()
    assert body["kind"] == "rider" and body["name"] == "Farah" and body["live_tokens"] == 1
    assert body["passkeys"] == 0 and body["open_safety_cases"] == 0
    assert body["recovery_links"] == []
    missing = await client.get(f"/v1/accounts/{UNKNOWN}", headers=admin_headers)
    assert missing.status_code == 404 and missing.json()["type"] == "account_not_found"
    # An operator's own account (a personal admin token) is found by its id alone.
    assert (await client.post("/v1/tokens", headers=admin_headers)).status_code == 201
    async with app.state.sessionmaker() as session:
        operator_id = await session.scalar(
            select(AuthToken.subject_id).where(AuthToken.role == Role.admin)
        )
    found = await client.get("/v1/accounts", params={"q": str(operator_id)}, headers=admin_headers)
    assert [(row["kind"], row["name"]) for row in found.json()] == [("operator", None)]
    assert (await client.get("/v1/accounts", headers=admin_headers)).json()[0]["name"] == "Farah"


async def test_the_database_folds_every_letter_as_the_search_does(app: FastAPI) -> None:
    """The stored `name_folded` (the migration's table) and `coop.search.fold` (what was typed)
    agree on every letter of the table, and leave other scripts as written."""
    letters = FOLD_FROM + "Ωω Жж 東京 'œ-ß"
    chunks = [letters[i : i + 150] for i in range(0, len(letters), 150)]
    async with app.state.sessionmaker() as session:
        for chunk in chunks:
            session.add(Rider(id=uuid.uuid4(), name=chunk))
            session.add(
                Driver(id=uuid.uuid4(), name=chunk, member_number=f"F-{uuid.uuid4().hex[:8]}")
            )
        await session.commit()
        riders = dict((await session.execute(select(Rider.name, Rider.name_folded))).all())
        drivers = dict((await session.execute(select(Driver.name, Driver.name_folded))).all())
    assert set(riders) == set(chunks)
    for name in chunks:
        assert riders[name] == fold(name) == drivers[name]
    assert fold("Éloïse Nguyễn ŒUVRE") == "eloise nguyen Œuvre"
