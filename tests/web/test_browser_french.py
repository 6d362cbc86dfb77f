"""French typography on every page, in Chromium: a French page never shows `%` without the
(narrow) no-break space before it, nor a decimal point in a number, nor `:` or `;` without
their no-break space (docs/french.md).

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
        json={"stars": 2, "comment": "Un long détour.", "tags": ["wrong_route", "friendly"]},
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
}
PUBLIC = ["/", "/agreement", "/proposals", "/transparency", "/systems", "/signin"]


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
        await person.sign_in(web.accounts[name].token, next_path=paths[0])
        for path in paths:
            await person.goto(path)
            text = await person.page.evaluate(READABLE_TEXT)
            assert len(text) > 200, f"{path} as {name}: the page is nearly empty"
            faults[f"{path} ({name})"] = typography_faults(text)
    found = [f"{page}: {fault}" for page, listed in faults.items() for fault in listed]
    assert not found, "\n".join(found)
