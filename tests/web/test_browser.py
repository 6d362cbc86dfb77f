"""The co-op's pages driven in Chromium, against the real service and real data.

Tests run in file order and share one server and one browser (tests/web/conftest.py): the live
map first (simulated drivers, who must not count on a vote's roll), then the vote that ratifies
version 2, then an appeal, then the audit log that recorded all of it.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from playwright.async_api import expect
from sqlalchemy import update

from coop.db import utcnow
from coop.settings import Settings
from reputation.models import Appeal
from server.simulator import registration
from tests.builders import DOWNTOWN, PLATEAU, local_today, offer_to, place_driver, request_trip
from tests.web.conftest import PHONE, ROOT, Visit, Web

PUBLIC_PAGES = {
    "systems": "/systems",
    "home": "/",
    "agreement": "/agreement",
    "transparency": "/transparency",
    "proposals": "/proposals",
    "signin": "/signin",
}
TIMEOUT_MS = 20_000


async def test_public_pages_in_english_and_french(web: Web, visit: Callable[..., Any]) -> None:
    for language, word in (("en", "Transparency"), ("fr", "Transparence")):
        v: Visit = await visit(language=language)
        for name, path in PUBLIC_PAGES.items():
            await v.goto(path)
            assert await v.page.get_attribute("html", "lang") == language
            await expect(v.page.locator("header nav")).to_contain_text(word)
            await v.axe(f"{path} ({language})")
            await v.shot(f"{name}-{language}")
    # The switch on every page: from French back to English, on the same page.
    await v.goto("/agreement")
    await v.page.get_by_role("link", name="English").click()
    await expect(v.page.locator("h1")).to_have_text("The collective agreement")
    await v.page.get_by_role("link", name="Français").click()
    await expect(v.page.locator("h1")).to_have_text("La convention collective")
    # Money and numbers as each language writes them.
    await expect(v.page.locator("#calc-total")).to_contain_text(re.compile(r"\d+,\d\d\s*\$"))
    phone: Visit = await visit(language="en", viewport=PHONE)
    await phone.goto("/")
    await phone.shot("home-phone")
    width = await phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the home page scrolls sideways on a phone ({width}px)"
    # The automated decisions, at phone size in French: every decision, none sideways.
    phone_fr: Visit = await visit(language="fr", viewport=PHONE)
    await phone_fr.goto("/systems")
    await expect(phone_fr.page.locator("h1")).to_have_text("Décisions automatisées")
    await expect(phone_fr.page.locator("section.decision")).to_have_count(9)
    await expect(phone_fr.page.locator("#decision-status_decisions")).to_contain_text(
        "jamais automatisé"
    )
    await phone_fr.shot("systems-phone-fr")
    width = await phone_fr.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"/systems scrolls sideways on a phone ({width}px)"


async def test_api_docs_work_offline(web: Web, visit: Callable[..., Any]) -> None:
    v: Visit = await visit()
    await v.goto("/docs")
    await expect(v.page.locator(".swagger-ui .info .title")).to_contain_text(
        "Co-op ride-hail", timeout=TIMEOUT_MS
    )
    # The bearer scheme is declared: "Authorize" takes a token.
    await expect(v.page.locator("button.authorize")).to_be_visible()
    await v.shot("docs", full_page=False)
    await v.goto("/redoc")
    await expect(v.page.locator("h1")).to_contain_text("Co-op ride-hail", timeout=TIMEOUT_MS)
    await v.shot("redoc", full_page=False)


async def test_each_role_sees_what_its_account_allows(web: Web, visit: Callable[..., Any]) -> None:
    expected = {
        # account: (live map, review, my page)
        "admin": (True, False, False),
        "committee": (True, False, True),
        "reviewer": (False, True, True),
        "amira": (False, False, True),
        "rider": (False, False, True),
    }
    for name, (ops, review, me) in expected.items():
        v: Visit = await visit()
        token = web.admin_token if name == "admin" else web.accounts[name].token
        await v.sign_in(token)
        nav = v.page.locator("header nav")
        await expect(v.page.locator(".who")).to_be_visible()
        for link, shown in (("/ops", ops), ("/review", review), ("/me", me)):
            await expect(nav.locator(f'a[href="{link}"]')).to_have_count(1 if shown else 0)
        if not ops:
            await v.goto("/ops", expect=403)
        if not review:
            await v.goto("/review", expect=403 if name != "admin" else 403)
        # The session cookie: HttpOnly, SameSite=Lax, not readable by scripts.
        cookies = {c["name"]: c for c in await v.context.cookies()}
        assert cookies["coop_session"]["httpOnly"] and cookies["coop_session"]["sameSite"] == "Lax"
        assert "coop_session" not in await v.page.evaluate("document.cookie")
        await v.goto("/")
        await v.page.get_by_role("button", name="Sign out").click()
        await expect(v.page.get_by_role("link", name="Sign in", exact=True)).to_be_visible()
        await v.goto("/me", expect=401)


async def test_live_map_shows_simulated_drivers_and_updates(
    web: Web, visit: Callable[..., Any]
) -> None:
    admin = {"Authorization": f"Bearer {web.admin_token}"}
    drivers: list[uuid.UUID] = []
    for number in range(40):
        response = await web.http.post(
            "/v1/drivers",
            headers=admin,
            json=registration.driver_body(
                number,
                local_today(),
                name=f"Simulated driver {number}",
                member_number=f"SIM-web-{number}",
                plate=f"SIM {number}",
                simulated=True,
            ),
        )
        assert response.status_code == 201, response.text
        if number == 0:
            token = response.json()["token"]
            me = await web.http.get("/v1/drivers/me", headers={"Authorization": f"Bearer {token}"})
            assert me.json()["simulated"] is True
        drivers.append(uuid.UUID(response.json()["id"]))
    for number, driver_id in enumerate(drivers):
        spot = {"lat": 45.48 + (number % 8) * 0.008, "lon": -73.62 + (number // 8) * 0.012}
        await place_driver(web.app, driver_id, spot)
    rider = web.accounts["rider"]
    waiting = await request_trip(web.http, rider, pickup=DOWNTOWN, dropoff=PLATEAU)
    for language in ("en", "fr"):
        v: Visit = await visit(language=language)
        await v.sign_in(web.accounts["committee"].token, next_path="/ops")
        body = v.page.locator("body")
        await expect(body).to_have_attribute("data-ops-drivers", "40", timeout=TIMEOUT_MS)
        await expect(v.page.locator('[data-count="available"]')).to_have_text("40")
        await expect(v.page.locator('[data-count="open_requests"]')).to_have_text("1")
        frames = int(await body.get_attribute("data-ops-frames") or "0")
        # The city moves: ten drivers go off duty; the next batch's frame shows it.
        for driver_id in drivers[:10]:
            await place_driver(web.app, driver_id, DOWNTOWN, available=False)
        await expect(v.page.locator('[data-count="available"]')).to_have_text(
            "30", timeout=TIMEOUT_MS
        )
        assert int(await body.get_attribute("data-ops-frames") or "0") > frames
        # The map draws on one canvas, not one element per driver.
        assert await v.page.locator(".leaflet-overlay-pane canvas").count() >= 1
        assert await v.page.locator(".leaflet-marker-icon").count() == 0
        await v.axe(f"/ops ({language})")
        await v.shot(f"ops-{language}", full_page=False)
        for driver_id in drivers[:10]:
            await place_driver(web.app, driver_id, DOWNTOWN, available=True)
    phone: Visit = await visit(viewport=PHONE)
    await phone.sign_in(web.admin_token, next_path="/ops")
    await expect(phone.page.locator("body")).to_have_attribute(
        "data-ops-drivers", "40", timeout=TIMEOUT_MS
    )
    await phone.shot("ops-phone", full_page=False)
    cancelled = await web.http.post(f"/v1/trips/{waiting['id']}/cancel", headers=rider.headers)
    assert cancelled.status_code == 200, cancelled.text
    for driver_id in drivers:  # off duty, so later tests choose whom the matcher offers
        await place_driver(web.app, driver_id, DOWNTOWN, available=False)


async def test_committee_drafts_members_vote_and_version_2_is_in_force(
    web: Web, visit: Callable[..., Any]
) -> None:
    committee: Visit = await visit()
    await committee.sign_in(web.accounts["committee"].token, next_path="/proposals")
    page = committee.page
    await page.locator("#f-title").fill("A better rate per kilometre")
    await page.locator("#f-rationale").fill("Fuel costs more: drivers earn more per kilometre.")
    await page.locator("#f-terms-fares-standard-per_km").fill("1.25")
    await page.locator("#f-terms-commission-percent").fill("eight")  # one invalid field
    await page.get_by_role("button", name="Check and show the changes").click()
    error = page.locator("#f-terms-commission-percent-error")
    await expect(error).to_contain_text("terms.commission.percent")
    await expect(page.locator("#f-terms-commission-percent")).to_have_attribute(
        "aria-invalid", "true"
    )
    await expect(page.get_by_role("button", name="Open the vote")).to_have_count(0)
    await committee.axe("/proposals with an invalid field")
    await committee.shot("proposal-draft-invalid-en")
    await page.locator("#f-terms-commission-percent").fill("8")
    await page.get_by_role("button", name="Check and show the changes").click()
    await expect(page.locator("#preview #diff-table")).to_contain_text("fares.standard.per_km")
    await expect(page.locator("#preview")).to_contain_text("1.25")
    await committee.shot("proposal-draft-preview-en")
    await page.get_by_role("button", name="Open the vote").click()
    await expect(page.locator("h1")).to_have_text("A better rate per kilometre")
    proposal_id = page.url.rsplit("/", 1)[1]
    # The simulated drivers of the map are on no roll: the five members are.
    detail = (await web.http.get(f"/v1/proposals/{proposal_id}")).json()
    assert detail["eligible"] == 5, detail
    # Members vote, and one changes their vote before the close.
    await _vote(committee, proposal_id, "yes")
    for name, choices in (("amira", ["no", "yes"]), ("jf", ["yes"]), ("mei", ["abstain"])):
        member: Visit = await visit(language="fr" if name == "jf" else "en")
        await member.sign_in(web.accounts[name].token, next_path=f"/proposals/{proposal_id}")
        for choice in choices:
            await _vote(member, proposal_id, choice)
        if name == "jf":
            await member.axe("/proposals/{id} (fr)")
            await member.shot("proposal-vote-fr")
    ballot = await web.http.get(f"/v1/proposals/{proposal_id}/ballot", headers=web.headers("amira"))
    assert ballot.json()["choice"] == "yes"
    # The close: after voting_closes_at (a week ahead by default) the committee counts.
    web.clock.offset_s = 8 * 86400
    await committee.goto(f"/proposals/{proposal_id}")
    await expect(page.locator("#tally-yes")).to_have_text("3")
    await expect(page.locator("main")).to_contain_text("version 2")
    await committee.axe("/proposals/{id} closed")
    await committee.shot("proposal-ratified-en")
    await committee.goto("/agreement")
    await expect(page.locator("#in-force")).to_contain_text("version 2")
    await expect(page.locator("#diff-table")).to_contain_text("fares.standard.per_km")
    await expect(page.locator("#diff-table td.after")).to_contain_text("1.25")
    await committee.shot("agreement-v2-en")
    # The calculator prices any version: version 1 and version 2 differ by the kilometre rate.
    await committee.goto("/agreement?version=1&km=10&minutes=20")
    v1 = await page.locator("#calc-total").text_content()
    await committee.goto("/agreement?version=2&km=10&minutes=20")
    v2 = await page.locator("#calc-total").text_content()
    assert (v1, v2) == ("$21.00", "$23.00"), (v1, v2)


async def _vote(v: Visit, proposal_id: str, choice: str) -> None:
    await v.goto(f"/proposals/{proposal_id}")
    await v.page.locator(f"#choice-{choice}").check()
    await v.page.locator('form[action$="/ballot"] button[type=submit]').click()
    await expect(v.page.locator("#your-ballot")).to_contain_text(
        {"yes": "yes", "no": "no", "abstain": "abstain"}[choice]
        if "fr" not in (await v.page.get_attribute("html", "lang") or "")
        else {"yes": "oui", "no": "non", "abstain": "abstention"}[choice]
    )


async def test_driver_appeals_a_rating_and_a_reviewer_decides(
    web: Web, visit: Callable[..., Any]
) -> None:
    web.clock.offset_s = 0
    rider, driver = web.accounts["rider"], web.accounts["amira"]
    # A real trip, matched, driven and completed, then rated.
    trip = await request_trip(web.http, rider)
    await place_driver(web.app, driver.id, DOWNTOWN)
    offer_id = await offer_to(web.app, driver)
    assert (await web.http.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)).is_success
    for step in ("arrived", "start", "complete"):
        response = await web.http.post(f"/v1/trips/{trip['id']}/{step}", headers=driver.headers)
        assert response.status_code == 200, response.text
    rating = await web.http.post(
        f"/v1/trips/{trip['id']}/rating",
        headers=rider.headers,
        json={"stars": 2, "comment": "Took a long detour.", "tags": ["wrong_route"]},
    )
    assert rating.status_code == 201, rating.text
    rating_id = rating.json()["id"]

    amira: Visit = await visit()
    await amira.sign_in(driver.token, next_path="/me")
    card = amira.page.locator(f"#rating-{rating_id}")
    await expect(card).to_contain_text("Took a long detour.")
    await expect(card).to_contain_text(re.compile(r"rider-[0-9a-f]{8}"))
    await card.get_by_role("button", name="Send my appeal to a person").click()
    card = amira.page.locator(f"#rating-{rating_id}")
    await expect(card.locator(".field-error")).to_contain_text("statement")
    await card.locator("textarea").fill("The road was closed; the app chose the detour.")
    await card.get_by_role("button", name="Send my appeal to a person").click()
    await expect(amira.page.locator(f"#rating-{rating_id} .appeal-state")).to_contain_text(
        "Appealed"
    )
    # Her pay: this period's statement, with the trip (docs/pay.md).
    await expect(amira.page.locator("tr.statement.open")).to_contain_text("$")
    await amira.axe("/me (driver)")
    await amira.shot("me-driver-en")
    # The same page in French: the score's explanation, the tags and the pay in French too.
    amira_fr: Visit = await visit(language="fr")
    await amira_fr.sign_in(driver.token, next_path="/me")
    await expect(amira_fr.page.locator("#score-explanation")).to_contain_text("Pas encore de note")
    await expect(amira_fr.page.locator(f"#rating-{rating_id}")).to_contain_text("mauvais trajet")
    await expect(amira_fr.page.locator("#statements")).to_contain_text("Ma paie")
    await expect(amira_fr.page.locator("tr.statement.open td.total")).to_contain_text(
        re.compile(r"\d+,\d\d\s*\$")
    )
    await amira_fr.page.locator("#score-title ~ details > summary").click()
    await expect(amira_fr.page.locator("#score-explanation")).to_be_visible()
    await amira_fr.axe("/me (driver, fr)")
    await amira_fr.shot("me-driver-fr")

    # Its deadline passes: the reviewer sees it overdue, first and marked.
    async with web.app.state.sessionmaker() as session:
        await session.execute(
            update(Appeal)
            .where(Appeal.rating_id == uuid.UUID(rating_id))
            .values(due_by=utcnow() - timedelta(hours=3))
        )
        await session.commit()
    reviewer: Visit = await visit()
    await reviewer.sign_in(web.accounts["reviewer"].token, next_path="/review")
    appeal = reviewer.page.locator("li.appeal").first
    await expect(appeal).to_contain_text("The road was closed")
    await expect(appeal).to_contain_text("Took a long detour.")
    await expect(appeal).to_have_class(re.compile(r"\boverdue\b"))
    await expect(appeal.locator(".badge.alert")).to_contain_text("Overdue since")
    await reviewer.axe("/review")
    await reviewer.shot("review-en")
    await appeal.locator('input[value="rating_removed"]').check()
    await appeal.locator("textarea").fill("The closure is on the city's list for that day.")
    await appeal.get_by_role("button", name="Decide").click()
    await expect(reviewer.page.locator("li.appeal")).to_have_count(0)

    await amira.goto("/me")
    await expect(amira.page.locator(f"#rating-{rating_id}")).to_contain_text("rating removed")
    await expect(amira.page.locator(f"#rating-{rating_id}")).to_contain_text("removed on appeal")

    lucie: Visit = await visit(language="fr")
    await lucie.sign_in(rider.token, next_path="/me")
    receipt = lucie.page.locator(f"#trip-{trip['id']}")
    await expect(receipt).to_contain_text("terminé")
    paid = (await web.http.get(f"/v1/trips/{trip['id']}/receipt", headers=rider.headers)).json()
    await expect(receipt.locator("dd.total")).to_contain_text(paid["total"].replace(".", ","))
    await expect(receipt.locator("dd.driver-share")).to_contain_text(
        paid["driver_earnings"].replace(".", ",")
    )
    await expect(receipt.locator("dd.commission")).to_contain_text(
        paid["commission"].replace(".", ",")
    )
    await expect(receipt).to_contain_text(f"version {paid['agreement_version']}")
    await lucie.axe("/me (rider, fr)")
    await lucie.shot("me-rider-fr")


async def test_audit_verification_in_the_page_agrees_with_the_command(
    web: Web, visit: Callable[..., Any], base_settings: Settings
) -> None:
    for language in ("en", "fr"):
        v: Visit = await visit(language=language)
        await v.goto("/transparency")
        await v.page.locator("#verify-audit").click()
        head = v.page.locator("#head-hash")
        await expect(head).to_have_text(re.compile(r"^[0-9a-f]{64}$"), timeout=TIMEOUT_MS)
        await v.axe(f"/transparency after verifying ({language})")
        await v.shot(f"transparency-verified-{language}")
    env = {**os.environ, "COOP_DATABASE_URL": base_settings.database_url}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "server", "verify-audit"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r"audit log intact: (\d+) entries, head hash ([0-9a-f]{64})", result.stdout)
    assert match, result.stdout
    assert await head.text_content() == match.group(2)
    assert int(match.group(1)) >= 2  # at least version 1 and the appeal decision
    status = await v.page.locator("#verify-result").text_content()
    assert status is not None and match.group(1) in status
    # The log's pager, from the keyboard: focus "next page" and press Enter.
    await v.goto("/transparency?per_page=1")
    first_page = await v.page.locator("table.audit tbody th").all_text_contents()
    link = v.page.locator('[data-pager="audit"] a[rel="next"]')
    await link.focus()
    await expect(link).to_be_focused()
    await v.page.keyboard.press("Enter")
    await v.page.wait_for_url(re.compile(r"audit="))
    await expect(v.page.locator('[data-pager="audit"] .page-number')).to_have_text("Page 2")
    second_page = await v.page.locator("table.audit tbody th").all_text_contents()
    assert int(second_page[0]) < int(first_page[-1]), (first_page, second_page)
