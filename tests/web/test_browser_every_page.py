"""Every page in Chromium at phone size (390 px), signed in as each role.

French typography: a French page never shows `%` without the (narrow) no-break space before it,
nor a decimal point in a number, nor `:` or `;` without their no-break space (docs/french.md).
Phone layout: no page scrolls sideways, as a whole or in a part (tables become stacked rows).

The pages are visited with real data behind them (a trip driven, rated, appealed; a receipt; a
pay statement; the committee's form), signed in as each role, at phone size in French.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.builders import DOWNTOWN, offer_to, place_driver, request_trip
from tests.web.conftest import PHONE, Visit, Web

# Words a person reads: everything but code names (shown small beside their label, in <code>).
READABLE_TEXT = """() => {
  const skip = new Set(['CODE', 'PRE', 'KBD', 'SAMP', 'SCRIPT', 'STYLE', 'NOSCRIPT']);
  const out = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { out.push(node.textContent); return; }
    if (node.nodeType !== Node.ELEMENT_NODE || skip.has(node.tagName)) return;
    if (node.tagName === 'INPUT' && node.type !== 'hidden') out.push(' ' + node.value + ' ');
    for (const child of node.childNodes) walk(child);
    out.push(' ');
  };
  walk(document.body);
  return out.join('');
}"""
NO_BREAK = "\u00a0\u202f"
# `%` after anything but a no-break space; a digit, a point, a digit.
BAD_PERCENT = re.compile(rf"(?<![{NO_BREAK}])%")
DECIMAL_POINT = re.compile(r"\d\.\d")
# `:` or `;` after a plain space, or right after a word (but "14:05", "HH:MM" are no sentence).
BAD_COLON = re.compile(r"( [:;])|((?<=[^\W\d_])[:;](?=\s))")


def typography_faults(text: str) -> list[str]:
    """Each place a French text breaks the two rules, with a little context."""
    faults = []
    for pattern in (BAD_PERCENT, DECIMAL_POINT, BAD_COLON):
        for match in pattern.finditer(text):
            start, end = max(0, match.start() - 30), match.end() + 30
            faults.append(re.sub(r"\s+", " ", text[start:end]).strip())
    return faults


def test_the_typography_check_finds_what_it_should() -> None:
    assert typography_faults("Commission 8\u202f% · 0,85\u00a0$ · 2,0\u00a0s") == []
    assert typography_faults("100\u00a0%") == []
    assert len(typography_faults("Commission 8%")) == 1
    assert len(typography_faults("Commission 8 %")) == 1
    assert len(typography_faults("0.85 $")) == 1
    assert len(typography_faults("attente 2.0 s")) == 1
    assert typography_faults("version 2 · 2026-12-07 · 14 h 05") == []
    assert typography_faults("Tarif\u00a0: 3,50\u00a0$\u202f; la nuit de 22:00") == []
    assert len(typography_faults("Tarif : 3,50")) == 1
    assert len(typography_faults("Tarif: 3,50")) == 1
    assert len(typography_faults("course; le reste")) == 1


async def _seed(web: Web) -> None:
    """A trip driven, completed, rated two stars with a tag, and appealed."""
    rider, driver = web.accounts["rider"], web.accounts["amira"]
    trip = await request_trip(web.http, rider)
    await place_driver(web.app, driver.id, DOWNTOWN)
    offer_id = await offer_to(web.app, driver)
    accepted = await web.http.post(f"/v1/offers/{offer_id}/accept", headers=driver.headers)
    assert accepted.is_success, accepted.text
    for step in ("arrived", "start", "complete"):
        response = await web.http.post(f"/v1/trips/{trip['id']}/{step}", headers=driver.headers)
        assert response.status_code == 200, response.text
    rating = await web.http.post(
        f"/v1/trips/{trip['id']}/rating",
        headers=rider.headers,
        # A word longer than a phone is wide (a pasted link) must wrap, not widen the card.
        json={
            "stars": 2,
            "comment": "Un long détour par https://exemple.org/itineraire/par-le-pont-jacques-cartier-et-retour",
            "tags": ["wrong_route", "friendly"],
        },
    )
    assert rating.status_code == 201, rating.text
    appeal = await web.http.post(
        f"/v1/ratings/{rating.json()['id']}/appeal",
        headers=driver.headers,
        json={"statement": "La rue était fermée."},
    )
    assert appeal.status_code == 201, appeal.text


SIGNED_IN_PAGES = {
    "rider": ["/me"],
    "amira": ["/me"],
    "reviewer": ["/review", "/me"],
    "committee": ["/proposals", "/me"],
    "admin": ["/admin", "/admin?q=a", "/admin/drivers/new"],
}
PUBLIC = [
    "/",
    "/agreement",
    "/proposals",
    "/transparency",
    "/systems",
    "/signin",
    "/ride",
    "/drive",
    "/guide",
    "/guide/rider",
    "/guide/driver",
    "/guide/committee",
    "/guide/reviewer",
    "/guide/operator",
]


async def test_no_french_page_breaks_the_typography_rules(
    web: Web, visit: Callable[..., Any]
) -> None:
    await _seed(web)
    faults: dict[str, list[str]] = {}
    anonymous: Visit = await visit(language="fr", viewport=PHONE)
    for path in PUBLIC:
        await anonymous.goto(path)
        faults[path] = typography_faults(await anonymous.page.evaluate(READABLE_TEXT))
    for name, paths in SIGNED_IN_PAGES.items():
        person: Visit = await visit(language="fr", viewport=PHONE)
        await person.sign_in(token_of(web, name), next_path=paths[0])
        for path in paths:
            await person.goto(path)
            text = await person.page.evaluate(READABLE_TEXT)
            assert len(text) > 200, f"{path} as {name}: the page is nearly empty"
            faults[f"{path} ({name})"] = typography_faults(text)
    found = [f"{page}: {fault}" for page, listed in faults.items() for fault in listed]
    assert not found, "\n".join(found)


async def test_every_page_fits_a_phone_without_sideways_scrolling(
    web: Web, visit: Callable[..., Any]
) -> None:
    """At 390 px, in both languages, signed in as each role: the document is never wider than
    the screen (tables become stacked rows). Runs after the typography test's data."""
    too_wide: list[str] = []

    async def measure(v: Visit, label: str) -> None:
        if label in SHOTS:
            await v.shot(SHOTS[label])
        width = await v.page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            culprits = await v.page.evaluate(WIDEST)
            too_wide.append(f"{label}: {width}px ({culprits})")
        scrolling = await v.page.evaluate(SCROLLS_SIDEWAYS)
        if scrolling:
            too_wide.append(f"{label}: a part scrolls sideways ({scrolling})")

    for language in ("en", "fr"):
        anonymous: Visit = await visit(language=language, viewport=PHONE)
        for path in PUBLIC:
            await anonymous.goto(path)
            await measure(anonymous, f"{path} ({language})")
        for name, paths in SIGNED_IN_PAGES.items():
            person: Visit = await visit(language=language, viewport=PHONE)
            await person.sign_in(token_of(web, name), next_path=paths[0])
            for path in paths:
                await person.goto(path)
                await measure(person, f"{path} as {name} ({language})")
    assert not too_wide, "\n".join(too_wide)


# The elements that stick out of the screen on the right, for the failure's message.
WIDEST = """() => [...document.querySelectorAll('body *')]
  .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .slice(0, 4)
  .map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
       + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ')[0] : ''))
  .join(', ')"""
# A part of the page that scrolls sideways inside it (a wide table in a scrolling box).
SCROLLS_SIDEWAYS = """() => [...document.querySelectorAll('body *')]
  .filter((e) => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX)
                 && e.scrollWidth > e.clientWidth + 1)
  .map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
       + ' > ' + (e.firstElementChild ? e.firstElementChild.tagName.toLowerCase()
                  + (e.firstElementChild.id ? '#' + e.firstElementChild.id : '') : ''))
  .join(', ')"""
# Phone-size screenshots of the pages whose tables become stacked rows (docs/screenshots).
SHOTS = {
    "/agreement (fr)": "agreement-phone-fr",
    "/me as amira (fr)": "me-driver-phone-fr",
    "/transparency (en)": "transparency-phone-en",
}


def token_of(web: Web, name: str) -> str:
    """The token `name` signs in with: an account's, or the operators' (`admin`)."""
    return web.admin_token if name == "admin" else web.accounts[name].token
