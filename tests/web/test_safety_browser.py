"""The operators' safety pages in Chromium (docs/safety.md): an SOS raised over the API sounds
the /ops alarm (a banner, live with the map's frames) and waits on /safety, where an operator
acknowledges it, writes a note and resolves it; in English and French, at phone and desktop
size. The committee, who also see the map, get no alarm."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.async_api import expect

from tests.builders import DOWNTOWN, north
from tests.web.conftest import DESKTOP, PHONE, Visit, Web

TIMEOUT_MS = 20_000


async def _sos(web: Web, where: dict[str, float], detail: str) -> str:
    raised = await web.http.post(
        "/v1/sos", json={**where, "detail": detail}, headers=web.headers("rider")
    )
    assert raised.status_code == 201, raised.text
    alert_id: str = raised.json()["id"]
    return alert_id


async def test_an_sos_sounds_the_ops_alarm_and_is_worked_on_the_safety_page(
    web: Web, visit: Callable[..., Any]
) -> None:
    # The map open before the alert: the banner appears with the next frame, without a reload.
    ops: Visit = await visit()
    await ops.sign_in(web.admin_token, next_path="/ops")
    alarm = ops.page.locator("#sos-alarm")
    await expect(alarm).to_be_hidden()
    first = await _sos(web, DOWNTOWN, "A car has been following me for ten minutes")
    await expect(alarm).to_be_visible(timeout=TIMEOUT_MS)
    await expect(alarm).to_contain_text("An SOS is waiting for a person")
    await expect(alarm.locator("a[href='/safety']")).to_be_visible()
    second = await _sos(web, north(200), "Driver shouting")
    await expect(alarm).to_have_attribute("data-count", "2", timeout=TIMEOUT_MS)
    await expect(alarm).to_contain_text("SOS alerts are waiting for a person: 2")
    await ops.axe("/ops with the SOS alarm")
    await ops.shot("ops-sos-alarm-en", full_page=False)

    # The committee sees the map, not the alarm.
    committee: Visit = await visit()
    await committee.sign_in(web.accounts["committee"].token, next_path="/ops")
    await expect(committee.page.locator("body")).to_have_attribute(
        "data-ops-frames", "1", timeout=TIMEOUT_MS
    )
    assert await committee.page.locator("#sos-alarm").count() == 0
    await committee.goto("/safety", expect=403)

    # On a phone, the operator works the queue: the oldest first, with its age.
    phone: Visit = await visit(viewport=PHONE)
    await phone.sign_in(web.admin_token, next_path="/safety")
    rows = phone.page.locator("#safety-queue > li")
    await expect(rows).to_have_count(2)
    row = phone.page.locator(f"#alert-{first}")
    await expect(rows.first).to_have_attribute("id", f"alert-{first}")
    await expect(row).to_contain_text("SOS")
    await expect(row).to_contain_text("Waiting for a person")
    await expect(row).to_contain_text("by the rider")
    await expect(row).to_contain_text("A car has been following me")
    await expect(row).to_contain_text("Raised")
    await phone.axe("/safety with two alerts")
    await phone.shot("safety-queue-phone-en")

    await row.get_by_role("button", name="Acknowledge: I have it").click()
    await phone.page.wait_for_load_state("load")
    await expect(row).to_have_attribute("data-status", "acknowledged")
    await expect(row).to_contain_text("Acknowledged after")
    # One alert still unacknowledged: the alarm counts it alone.
    await expect(alarm).to_have_attribute("data-count", "1", timeout=TIMEOUT_MS)

    await row.locator("textarea[name=text]").fill("Called the rider; she is safe at a café.")
    await row.get_by_role("button", name="Add the note").click()
    await phone.page.wait_for_load_state("load")
    await expect(row).to_contain_text("Called the rider; she is safe at a café.")

    await row.get_by_label("False alarm").check()
    await row.locator("textarea[name=note]").fill("A neighbour's car; no danger.")
    await row.get_by_role("button", name="Resolve").click()
    await phone.page.wait_for_load_state("load")
    await expect(row).to_have_count(0)
    await expect(phone.page.locator("#safety-recent")).to_contain_text("False alarm")
    await phone.shot("safety-resolved-phone-en")

    # An empty note is refused in words, on the page, and nothing is written.
    other = phone.page.locator(f"#alert-{second}")
    await other.locator("textarea[name=text]").evaluate("e => e.removeAttribute('required')")
    await other.get_by_role("button", name="Add the note").click()
    await phone.page.wait_for_load_state("load")
    await expect(phone.page.locator("p.field-error")).to_be_visible()
    await expect(phone.page.locator(f"#alert-{second} ul.notes")).to_have_count(0)

    # Acknowledged by someone else meanwhile: the second click is told so, in words.
    acked = await web.http.post(
        f"/v1/safety/alerts/{second}/acknowledge",
        headers={"Authorization": f"Bearer {web.admin_token}"},
    )
    assert acked.status_code == 200, acked.text
    async with phone.page.expect_response(f"**/safety/{second}/acknowledge") as answer:
        await other.get_by_role("button", name="Acknowledge: I have it").click()
    assert (await answer.value).status == 409
    await phone.page.wait_for_load_state("load")
    await expect(phone.page.locator("main")).to_contain_text(
        "Another operator acknowledged this alert first"
    )
    await phone.shot("safety-taken-phone-en")
    # The refusal the test asked for is the browser's one console line; nothing else.
    phone.errors[:] = [e for e in phone.errors if "status of 409" not in e]
    await expect(alarm).to_be_hidden(timeout=TIMEOUT_MS)
    await web.http.post(
        f"/v1/safety/alerts/{second}/resolve",
        json={"outcome": "real"},
        headers={"Authorization": f"Bearer {web.admin_token}"},
    )


async def test_the_safety_page_in_french_at_desktop_and_phone_size(
    web: Web, visit: Callable[..., Any]
) -> None:
    alert_id = await _sos(web, north(300), "Le chauffeur refuse de me laisser descendre")
    for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        v: Visit = await visit(language="fr", viewport=viewport)
        await v.sign_in(web.admin_token, next_path="/safety")
        await expect(v.page.locator("h1")).to_have_text("Alertes et dossiers de sécurité")
        row = v.page.locator(f"#alert-{alert_id}")
        await expect(row).to_contain_text("En attente d'une personne")
        await expect(row).to_contain_text("par la personne passagère")
        await expect(
            row.get_by_role("button", name="Prendre en charge : je m’en occupe")
        ).to_be_visible()
        await v.axe(f"/safety (fr, {name})")
        await v.shot(f"safety-{name}-fr")
        ops: Visit = await visit(language="fr", viewport=viewport)
        await ops.sign_in(web.admin_token, next_path="/ops")
        await expect(ops.page.locator("#sos-alarm")).to_contain_text("Un SOS attend une personne")
        await ops.shot(f"ops-sos-alarm-{name}-fr", full_page=False)
    # The transparency page counts it, never who.
    public: Visit = await visit(language="fr")
    await public.goto("/transparency")
    figures = public.page.locator("#safety-figures")
    await expect(figures).to_contain_text("Alertes SOS")
    assert "Le chauffeur refuse" not in await figures.inner_text()
    await web.http.post(
        f"/v1/safety/alerts/{alert_id}/resolve",
        json={"outcome": "drill"},
        headers={"Authorization": f"Bearer {web.admin_token}"},
    )
