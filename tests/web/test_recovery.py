"""The one-time recovery link, as the person, an operator and a hostile visitor would try it:
issued by operators only, shown without being spent, used once (two tabs racing included),
expired after 15 minutes, audited, and listed on the person's own page."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from coop.audit import AuditEntry
from coop.db import utcnow
from coop.state import CoreState, state_of
from server.web.sessions import SESSION_COOKIE
from tests.builders import make_driver, make_rider
from tests.web.pages import csrf_of, text_of


def _browser(app: FastAPI) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://test")


async def _issue(client: AsyncClient, headers: dict[str, str], account: object) -> dict[str, str]:
    response = await client.post(f"/v1/accounts/{account}/recovery-link", headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def _use(app: FastAPI, url: str) -> tuple[int, AsyncClient]:
    path = url.removeprefix("http://test")
    browser = _browser(app)
    page = await browser.get(path)
    assert page.status_code == 200
    used = await browser.post(path, data={"csrf": csrf_of(page.text)})
    return used.status_code, browser


async def test_an_operator_issues_a_link_that_signs_the_person_in_once(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers, name="Nadia")
    link = await _issue(client, admin_headers, driver.id)
    assert link["url"].startswith("http://test/recover/")
    token = link["url"].rsplit("/", 1)[1]
    assert len(token) >= 43  # 256 bits

    # Looking at the link (a chat app's preview) does not spend it.
    async with _browser(app) as preview:
        assert (await preview.get(f"/recover/{token}")).status_code == 200
    status, browser = await _use(app, link["url"])
    assert status == 303
    assert browser.cookies.get(SESSION_COOKIE)
    me = await browser.get("/me?recovered=1")
    await browser.aclose()
    assert me.status_code == 200
    words = text_of(me.text)
    assert "Nadia" in words
    assert "You are signed in with a recovery link" in words
    assert "Sign-in links issued for your account" in words and "used" in words

    # Used once: a second use, in another browser, is refused like an unknown link.
    again, other = await _use(app, link["url"])
    assert again == 404
    assert not other.cookies.get(SESSION_COOKIE)
    await other.aclose()
    unknown, stranger = await _use(app, "http://test/recover/" + "x" * 43)
    assert unknown == 404
    await stranger.aclose()

    async with app.state.sessionmaker() as session:
        kinds = list(await session.scalars(select(AuditEntry.kind)))
    assert kinds.count("recovery_link_issued") == 1 and kinds.count("recovery_link_used") == 1


async def test_only_operators_issue_links_and_only_for_accounts_that_exist(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    other = await make_rider(client, name="Other")
    refused = await client.post(f"/v1/accounts/{other.id}/recovery-link", headers=rider.headers)
    assert refused.status_code == 403
    anonymous = await client.post(f"/v1/accounts/{other.id}/recovery-link")
    assert anonymous.status_code == 401
    missing = await client.post(
        "/v1/accounts/00000000-0000-4000-8000-000000000000/recovery-link", headers=admin_headers
    )
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("account_not_found")


async def test_a_link_expires_after_fifteen_minutes(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    link = await _issue(client, admin_headers, rider.id)
    later = utcnow() + timedelta(minutes=15, seconds=1)
    state_of(app, CoreState).clock = lambda: later
    path = link["url"].removeprefix("http://test")
    async with _browser(app) as browser:
        page = await browser.get(path)
        used = await browser.post(path, data={"csrf": csrf_of(page.text)})
        assert used.status_code == 404
        assert "it expired" in text_of(used.text)


async def test_two_tabs_racing_one_link_sign_in_once(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    link = await _issue(client, admin_headers, rider.id)
    path = link["url"].removeprefix("http://test")
    tabs = [_browser(app) for _ in range(4)]
    pages = [await tab.get(path) for tab in tabs]
    answers = await asyncio.gather(
        *(
            tab.post(path, data={"csrf": csrf_of(page.text)})
            for tab, page in zip(tabs, pages, strict=True)
        )
    )
    for tab in tabs:
        await tab.aclose()
    assert sorted(a.status_code for a in answers) == [303, 404, 404, 404]
