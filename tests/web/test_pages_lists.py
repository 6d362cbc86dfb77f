"""Lists on pages: pagers that follow the API's cursors, overdue appeals first and marked, and a
rider's receipts and a driver's pay statements from the pay API."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update

from coop.db import utcnow
from reputation.models import Appeal
from tests.builders import (
    DOWNTOWN,
    Account,
    assigned_trip,
    make_driver,
    make_rider,
    place_driver,
)
from tests.web.pages import EN, FR, sign_in, text_of


def next_link(page: str, name: str) -> str | None:
    """The "next page" link of list `name` (its pager), or None on its last page."""
    pager = re.search(rf'<nav class="pager"[^>]*data-pager="{name}".*?</nav>', page, re.DOTALL)
    if pager is None:
        return None
    link = re.search(r'<a href="([^"]+)" rel="next"', pager.group(0))
    return html.unescape(link.group(1)) if link else None


async def walk(
    client: AsyncClient, start: str, name: str, pattern: str, within: str | None = None
) -> list[list[str]]:
    """Every page of list `name` from `start`, by its "next page" links: the ids on each (found
    by `pattern`, inside the element whose start tag matches `within` when given)."""
    pages: list[list[str]] = []
    url: str | None = start
    while url is not None:
        response = await client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        body = response.text
        if within is not None:
            found = re.search(within + r"(.*?)</section>", body, re.DOTALL)
            assert found, within
            body = found.group(1)
        pages.append(re.findall(pattern, body))
        url = next_link(response.text, name)
        assert len(pages) < 20, "the pager never ends"
    return pages


async def completed_trip(
    app: FastAPI, client: AsyncClient, rider: Account, driver: Account
) -> dict[str, Any]:
    trip = await assigned_trip(app, client, rider, driver)
    for step in ("arrived", "start", "complete"):
        response = await client.post(f"/v1/trips/{trip['id']}/{step}", headers=driver.headers)
        assert response.status_code == 200, response.text
    done: dict[str, Any] = response.json()
    # Off duty, so the next trip goes to whom the test chooses.
    await place_driver(app, driver.id, DOWNTOWN, available=False)
    return done


async def test_proposals_and_the_audit_log_page_through_every_item_once(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    committee = await make_driver(client, admin_headers, committee=True)
    terms = (await client.get("/v1/agreements/current")).json()["terms"]
    opened = []
    for number in range(5):
        terms["fares"]["standard"]["per_km"] = f"1.{30 + number}"
        response = await client.post(
            "/v1/proposals",
            headers=committee.headers,
            json={
                "title": f"Rate {number}",
                "rationale": "Costs rose.",
                "terms": terms,
                "voting_closes_at": (utcnow() + timedelta(days=3)).isoformat(),
            },
        )
        assert response.status_code == 201, response.text
        opened.append(response.json()["id"])
    api = (await client.get("/v1/proposals", params={"status": "open"})).json()
    # The "open" list pages alone (the page's other list, every vote, stays on its first page).
    open_ids = await walk(
        client,
        "/proposals?per_page=2",
        "open",
        r'<h3><a href="/proposals/([0-9a-f-]+)">',
        within=r'<section aria-labelledby="open">',
    )
    assert [len(ids) for ids in open_ids] == [2, 2, 1]
    assert sum(open_ids, []) == [p["id"] for p in api] and set(opened) == {p["id"] for p in api}
    # The first-page link goes back; the page number is shown.
    last = await client.get(
        (await _url_of_page(client, "/proposals?per_page=2", "open", 3)), headers=FR
    )
    assert "Page 3" in text_of(last.text) and "← Première page" in text_of(last.text)
    assert next_link(last.text, "open") is None
    # The audit log on /transparency: newest first, each entry once.
    seqs = await walk(
        client, "/transparency?per_page=2", "audit", r'<tr><th scope="row"[^>]*>(\d+)</th>'
    )
    flat = [int(seq) for ids in seqs for seq in ids]
    assert len(flat) >= 6 and flat == sorted(flat, reverse=True) and len(set(flat)) == len(flat)
    # A cursor made up or taken from another list is refused with a page, in the language.
    bad = await client.get("/transparency", params={"audit": "bm9wZQ"}, headers=FR)
    assert bad.status_code == 422 and "Une valeur de cette page n'est pas valide." in text_of(
        bad.text
    )
    other = re.search(r"open=([A-Za-z0-9_-]+)", (await client.get("/proposals?per_page=2")).text)
    assert other
    refused = await client.get("/transparency", params={"audit": other.group(1)})
    assert refused.status_code == 422


async def _url_of_page(client: AsyncClient, start: str, name: str, number: int) -> str:
    url = start
    for _ in range(number - 1):
        link = next_link((await client.get(url)).text, name)
        assert link is not None
        url = link
    return url


async def test_an_overdue_appeal_comes_first_and_stands_out_in_both_languages(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    drivers = [await make_driver(client, admin_headers, name=f"D{n}") for n in range(3)]
    reviewer = await make_driver(client, admin_headers, reviewer=True)
    appeals: list[str] = []
    for driver in drivers:
        trip = await completed_trip(app, client, rider, driver)
        rating = await client.post(
            f"/v1/trips/{trip['id']}/rating", headers=rider.headers, json={"stars": 2}
        )
        assert rating.status_code == 201, rating.text
        appeal = await client.post(
            f"/v1/ratings/{rating.json()['id']}/appeal",
            headers=driver.headers,
            json={"statement": f"Statement of {driver.id}"},
        )
        assert appeal.status_code == 201, appeal.text
        appeals.append(appeal.json()["id"])
    # The last one filed is made overdue: its deadline passed an hour ago.
    late = appeals[-1]
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(Appeal)
            .where(Appeal.id == uuid.UUID(late))
            .values(due_by=utcnow() - timedelta(hours=1))
        )
        await session.commit()
    await sign_in(client, reviewer.token)
    for headers, marked in ((EN, "Overdue since"), (FR, "En retard depuis")):
        review = await client.get("/review?per_page=2", headers=headers)
        ids = re.findall(
            r'<li class="card appeal( overdue)?" id="appeal-([0-9a-f-]+)"', review.text
        )
        assert ids[0] == (" overdue", late), ids  # first, and marked
        assert all(flag == "" for flag, _ in ids[1:])
        first = review.text.split('id="appeal-')[1].split("</h2>")[0]
        assert marked in html.unescape(first)
        # The pager reaches the rest, each once.
        pages = await walk(
            client,
            "/review?per_page=2",
            "appeals",
            r'<li class="card appeal[^"]*" id="appeal-([0-9a-f-]+)"',
        )
        assert sorted(sum(pages, [])) == sorted(appeals) and pages[0][0] == late
    for headers, heading in (
        (EN, "1 appeal is waiting past its deadline"),
        (FR, "1 appel attend au-delà de son échéance"),
    ):
        page = text_of((await client.get("/transparency", headers=headers)).text)
        assert heading in page, page
        late_by = r"Overdue by 6\d min" if headers is EN else r"En retard de 6\d min"
        assert re.search(late_by, page), page
        assert "Statement of" not in page  # when, never whose or why


async def test_a_rider_sees_receipts_and_a_driver_their_pay_page_by_page(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client, "Lucie")
    driver = await make_driver(client, admin_headers, name="Amira")
    trips = [await completed_trip(app, client, rider, driver) for _ in range(3)]
    receipts = [
        (await client.get(f"/v1/trips/{t['id']}/receipt", headers=rider.headers)).json()
        for t in trips
    ]
    await sign_in(client, rider.token)
    pages = await walk(
        client, "/me?per_page=2", "trips", r'<li class="card receipt" id="trip-([0-9a-f-]+)"'
    )
    assert [len(ids) for ids in pages] == [2, 1]
    assert sum(pages, []) == [t["id"] for t in reversed(trips)]  # newest first
    me = text_of((await client.get("/me", headers=FR)).text)
    newest = receipts[-1]
    total = newest["total"].replace(".", ",")
    assert f"Prix au compteur (ce que j'ai payé) {total} $" in me, me
    assert f"À la personne au volant {newest['driver_earnings'].replace('.', ',')} $" in me
    assert f"À la coop {newest['commission'].replace('.', ',')} $" in me
    assert f"convention, version {newest['agreement_version']}" in me
    assert newest["agreement_sha256"][:12] in me

    statements = (await client.get("/v1/drivers/me/statements", headers=driver.headers)).json()
    await sign_in(client, driver.token)
    page = await client.get("/me", headers=EN)
    row = re.search(
        r'<tr class="statement open" data-period="([0-9-]+)">(.*?)</tr>', page.text, re.DOTALL
    )
    assert row and row.group(1) == statements[0]["period_start"]
    cells = text_of(row.group(2))
    current = statements[0]
    assert current["trips"] == 3
    for amount in ("fares_total", "commission_total", "earnings_total", "top_up", "pay_total"):
        assert f"${current[amount]}" in cells, (amount, cells)
    french = text_of((await client.get("/me", headers=FR)).text)
    assert "Ma paie" in french and f"{current['pay_total'].replace('.', ',')} $" in french
