"""The operators' pages in Chromium at phone size (390 px), in English and French: an operator
finds an account, registers a driver (a refused field first, named beside it with the form
kept), hands over a sign-in link instead of the token, records a status decision and revokes the
driver's tokens; each checked through the API afterwards. No page scrolls sideways."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.async_api import expect

from server.simulator import registration
from tests.builders import local_today
from tests.web.conftest import PHONE, Visit, Web

TIMEOUT_MS = 20_000
# A French sentence's `:` or `;` needs a no-break space before it (docs/french.md).
BAD_FRENCH_COLON = re.compile(r"( [:;])|((?<=[^\W\d_])[:;](?=\s))")


async def _fits(v: Visit, label: str) -> None:
    width = await v.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{label}: {width}px wide at 390 px"


async def _french_typography(v: Visit, label: str) -> None:
    text = await v.page.locator("main").inner_text()
    bad = [m.group(0) for m in BAD_FRENCH_COLON.finditer(text)]
    assert not bad, f"{label}: {bad}"


async def _fill_driver(v: Visit, *, name: str, number: str, seats: str) -> None:
    today = local_today()
    car = registration.vehicle(31, today, plate="KLM 204", owner=name)
    facts = registration.qualification(31, today)
    page = v.page
    await page.locator("#f-name").fill(name)
    await page.locator("#f-member_number").fill(number)
    await page.locator("#f-vehicle-plate").fill(car["plate"])
    await page.locator("#f-vehicle-seats").fill(seats)
    await page.locator("#f-vehicle-vin").fill(car["vin"])
    await page.locator("#f-vehicle-make").fill(car["make"])
    await page.locator("#f-vehicle-model").fill(car["model"])
    await page.locator("#f-vehicle-year").fill(str(car["year"]))
    await page.locator("#f-vehicle-owner").fill(name)
    await page.locator("#f-vehicle-odometer_km").fill("30000")
    await page.locator("#f-qualification-licence_number").fill(facts["licence_number"])
    await page.locator("#f-qualification-training_certificate_on").fill(
        facts["training_certificate_on"]
    )
    await page.locator("#f-qualification-record_check_on").fill(facts["record_check_on"])
    await page.locator("#f-qualification-record_check_clear").select_option("true")
    await page.locator("#f-qualification-authorization_expires_on").fill(
        facts["authorization_expires_on"]
    )


async def test_an_operator_registers_a_driver_and_decides_on_a_phone_in_english(
    web: Web, visit: Callable[..., Any]
) -> None:
    v: Visit = await visit(viewport=PHONE)
    await v.sign_in(web.admin_token, next_path="/admin")
    page = v.page
    await expect(page.locator("h1")).to_have_text("Accounts")
    await expect(page.locator("nav a[href='/admin']")).to_have_attribute("aria-current", "page")
    await page.locator("#q").fill("AMIRA")
    await page.get_by_role("button", name="Find").click()
    await page.wait_for_load_state("load")
    await expect(page.locator("#accounts > li")).to_have_count(1)
    await expect(page.locator("#accounts")).to_contain_text("Amira")
    await v.axe("/admin with a result")
    await _fits(v, "/admin")
    await v.shot("admin-search-phone-en")

    # Register a driver: a refused field is named beside it, and the form keeps what was typed.
    await page.locator("#register-driver").click()
    await page.wait_for_load_state("load")
    await _fill_driver(v, name="Mireille Baptiste", number="M-5501", seats="0")
    await page.get_by_role("button", name="Register").click()
    await page.wait_for_load_state("load")
    await expect(page.locator("#f-vehicle-seats-error")).to_contain_text(
        "greater than or equal to 1"
    )
    await expect(page.locator("#f-name")).to_have_value("Mireille Baptiste")
    await expect(page.locator("#f-vehicle-vin")).not_to_have_value("")
    await v.axe("/admin/drivers with a refused field")
    await _fits(v, "the refused registration")
    await v.shot("admin-register-invalid-phone-en")
    await page.locator("#f-vehicle-seats").fill("4")
    await page.get_by_role("button", name="Register").click()
    await page.wait_for_load_state("load")
    await expect(page.locator("h1")).to_have_text("Mireille Baptiste is registered")
    await expect(page.locator("#once")).to_contain_text("it is shown once")
    token = await page.locator("#once-value").input_value()
    me = await web.http.get("/v1/drivers/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["member_number"] == "M-5501"
    driver_id = me.json()["id"]
    await v.axe("the token shown once")
    await _fits(v, "the token shown once")
    await v.shot("admin-registered-phone-en")

    # A sign-in link instead, behind its confirmation.
    await page.locator("#offer-link").click()
    await page.wait_for_load_state("load")
    await expect(page.locator("#confirm")).to_contain_text("Only after checking")
    await v.shot("admin-confirm-link-phone-en")
    await page.get_by_role("button", name="I checked: issue the link").click()
    await page.wait_for_load_state("load")
    url = await page.locator("#once-value").input_value()
    assert "/recover/" in url
    await _fits(v, "the sign-in link")
    await v.shot("admin-link-phone-en")

    # The account: a status decision with its reason, recorded as the API records it.
    await page.get_by_role("link", name="Open the account").click()
    await page.wait_for_load_state("load")
    await expect(page.locator("#account-status")).to_have_text("Active")
    await page.locator("#status-reason").fill("Asked for a pause of three months (letter).")
    await page.get_by_role("button", name="Record the decision: inactive").click()
    await page.wait_for_load_state("load")
    await expect(page.locator("#done")).to_contain_text("The decision is recorded")
    await expect(page.locator("#account-status")).to_have_text("Inactive")
    await expect(page.locator("#status-history")).to_contain_text("Asked for a pause")
    changes = await web.http.get(
        f"/v1/drivers/{driver_id}/status-changes",
        headers={"Authorization": f"Bearer {web.admin_token}"},
    )
    assert [c["to_status"] for c in changes.json()] == ["inactive"]
    await v.axe("an account's page")
    await _fits(v, "an account's page")
    await v.shot("admin-account-phone-en")

    # Revoke every token, behind its confirmation: the token handed over stops working.
    await page.locator("#revoke-tokens").click()
    await page.wait_for_load_state("load")
    await expect(page.locator("#confirm")).to_contain_text("Live tokens: 1.")
    await page.get_by_role("button", name="Revoke them all").click()
    await page.wait_for_load_state("load")
    await expect(page.locator("#revoked")).to_contain_text("Tokens revoked: 1.")
    gone = await web.http.get("/v1/drivers/me", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401


async def test_the_operators_pages_in_french_on_a_phone(
    web: Web, visit: Callable[..., Any]
) -> None:
    v: Visit = await visit(language="fr", viewport=PHONE)
    await v.sign_in(web.admin_token, next_path="/admin?q=jf")
    page = v.page
    await expect(page.locator("h1")).to_have_text("Comptes")
    await expect(page.locator("#accounts > li")).to_have_count(1)
    await expect(page.locator("#accounts")).to_contain_text("Personne au volant (membre)")
    await _fits(v, "/admin (fr)")
    await _french_typography(v, "/admin (fr)")
    await v.axe("/admin (fr)")
    await page.locator("#accounts a").first.click()
    await page.wait_for_load_state("load")
    await expect(page.locator("#status-title")).to_have_text("Statut de membre")
    # An empty reason is refused in words, in French, on the page.
    await page.locator("#status-reason").evaluate("e => e.removeAttribute('required')")
    await page.get_by_role("button", name="Inscrire la décision : inactif").click()
    await page.wait_for_load_state("load")
    await expect(page.locator("#status-error")).to_be_visible()
    assert "should" not in (await page.locator("#status-error").inner_text())
    await _fits(v, "an account's page (fr)")
    await _french_typography(v, "an account's page (fr)")
    await v.axe("an account's page (fr)")
    await v.shot("admin-account-phone-fr")
    await v.goto("/admin/drivers/new")
    await expect(page.locator("h1")).to_have_text("Inscrire une personne au volant")
    await _fits(v, "/admin/drivers/new (fr)")
    await _french_typography(v, "/admin/drivers/new (fr)")
    await v.axe("/admin/drivers/new (fr)")
    await v.shot("admin-register-phone-fr")
    # Someone who is not an operator is refused the page, and sees no link to it.
    member: Visit = await visit(language="fr", viewport=PHONE)
    await member.sign_in(web.accounts["committee"].token, next_path="/proposals")
    assert await member.page.locator("nav a[href='/admin']").count() == 0
    await member.goto("/admin", expect=403)
    await expect(member.page.locator("main")).to_contain_text("Votre compte")
