"""Money, numbers and words on the pages (docs/french.md): Babel's formats for each language,
money to the cent where a person reads it, every term of the agreement and every audit event in
words with its code name beside it, plural forms, and the raters' pseudonyms in French."""

from __future__ import annotations

import re
import types
from typing import Any, Union, get_args, get_origin
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from httpx import AsyncClient
from pydantic import BaseModel

from bargaining import term_descriptions
from bargaining.terms import Terms, load_founding_terms, terms_to_wire
from server.web.i18n import Formatter, translations
from server.web.pages.committee import form_value, term_fields, terms_from_form
from server.web.pages.messages import EVENT_NAMES, rater_name, term_label
from tests.builders import Account, assigned_trip, make_driver, make_rider
from tests.web.pages import EN, FR, sign_in, text_of

ZONE = ZoneInfo("America/Toronto")
FR_F, EN_F = Formatter("fr", ZONE), Formatter("en", ZONE)
NBSP = "\u00a0"


def _leaves(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every term's path in the models (a fare class's as `<key>`), present or optional."""
    found: list[str] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        kinds: list[Any] = [info.annotation]
        if get_origin(info.annotation) in (Union, types.UnionType):
            kinds = [k for k in get_args(info.annotation) if k is not type(None)]
        kind = kinds[0]
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found += _leaves(kind, f"{path}.")
        elif get_origin(kind) is dict:
            value = get_args(kind)[1]
            found += _leaves(value, f"{path}.<key>.")
        else:
            found.append(path)
    return found


def test_numbers_money_and_percentages_as_each_language_writes_them() -> None:
    assert FR_F.percent("8") == f"8{NBSP}%" and EN_F.percent("8") == "8%"
    assert FR_F.percent("9.975") == f"9,975{NBSP}%" and EN_F.percent("9.975") == "9.975%"
    assert FR_F.money("0.4106") == f"0,41{NBSP}$" and EN_F.money("0.4106") == "$0.41"
    assert FR_F.figure("0.35") == "0,35" and EN_F.figure("0.35") == "0.35"
    assert FR_F.figure(0.2) == "0,2" and FR_F.figure("1234.50") == f"1{NBSP}234,50"
    assert FR_F.figure(30) == "30"
    # Words, codes, dates and lists stay as they are.
    for kept in ("standard", "America/Toronto", "2026-12-07", "v1.2", ["a"], True, None):
        assert FR_F.figure(kept) == kept
    assert FR_F.duration(2) == f"2{NBSP}s"


def test_every_term_of_the_agreement_has_words_in_both_languages() -> None:
    fields = term_fields(terms_to_wire(load_founding_terms()))
    assert len(fields) >= 44
    french = translations("fr")
    for name, _value in fields:
        english = term_descriptions.description(name)
        assert english is not None, f"{name} has no description in bargaining/term_descriptions.py"
        assert french.gettext(english) != english, f"no French for {english!r}"
    # No description of a term that does not exist.
    assert set(term_descriptions.DESCRIPTIONS) == set(_leaves(Terms))
    assert term_label("terms.fares.accessible.base", "fr") == (
        "Tarif\u00a0: montant de départ d'une course (accessible)"
    )
    assert term_label("commission.percent", "en") == "Co-op's share of each fare, in percent"


def test_a_french_form_writes_decimals_with_a_comma_and_reads_them_back() -> None:
    wire = terms_to_wire(load_founding_terms())
    form = {name: form_value(value, "fr") for name, value in term_fields(wire)}
    assert form["terms.fares.standard.per_km"] == "1,05"
    assert form["terms.commission.cap"] == "2,50"
    assert form["terms.dispatch.fairness_weight"] == "0,2"
    assert form["terms.reputation.excluded_tags"] == "traffic, pricing, app_problem"
    assert form_value("2026-12-07", "fr") == "2026-12-07"
    assert terms_from_form(wire, form) == wire


def test_every_audit_event_has_a_french_name_and_raters_are_named_in_french() -> None:
    french = translations("fr")
    for kind, english in EVENT_NAMES.items():
        assert french.gettext(english) != english, kind
    assert rater_name("rider-1a2b3c4d", "fr") == "la personne passagère 1a2b3c4d"
    assert rater_name("rider-1a2b3c4d", "en") == "rider-1a2b3c4d"
    assert french.ngettext("%(num)s star", "%(num)s stars", 1) % {"num": 1} == "1 étoile"
    assert french.ngettext("%(num)s star", "%(num)s stars", 2) % {"num": 2} == "2 étoiles"


async def _completed_trip(
    app: FastAPI, client: AsyncClient, rider: Account, driver: Account
) -> dict[str, Any]:
    trip = await assigned_trip(app, client, rider, driver)
    for step in ("arrived", "start", "complete"):
        response = await client.post(f"/v1/trips/{trip['id']}/{step}", headers=driver.headers)
        assert response.status_code == 200, response.text
    done: dict[str, Any] = response.json()
    return done


async def test_a_receipt_shows_money_to_the_cent_and_keeps_the_exact_amount(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client, "Lucie")
    driver = await make_driver(client, admin_headers, name="Amira")
    trip = await _completed_trip(app, client, rider, driver)
    receipt = (await client.get(f"/v1/trips/{trip['id']}/receipt", headers=rider.headers)).json()
    exact = [item["amount"] for item in receipt["items"]]
    await sign_in(client, rider.token)
    for headers, language in ((EN, "en"), (FR, "fr")):
        page = (await client.get("/me", headers=headers)).text
        shown = re.findall(r'<dd class="item" title="([^"]*)">([^<]*)</dd>', page)
        assert len(shown) == len(exact)
        f = EN_F if language == "en" else FR_F
        for (title, text), amount in zip(shown, exact, strict=True):
            assert text == f.money(amount)
            assert title == f.amount(amount)
            assert re.search(r"\d[.,]\d\d(?!\d)", text), text
        words = text_of(page)
        assert re.search(r"\d[.,]\d{3,}", words) is None, "an amount with more than cents"


async def test_the_committee_form_and_its_diff_label_terms_in_words(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    committee = await make_driver(client, admin_headers, committee=True)
    await sign_in(client, committee.token)
    page = (await client.get("/proposals", headers=FR)).text
    assert (
        "Part de la coop sur chaque tarif, en pourcentage "
        '<code class="term-code">commission.percent</code>'
    ) in page
    assert 'value="1,05"' in page
    english = (await client.get("/proposals", headers=EN)).text
    assert (
        'Co-op&#39;s share of each fare, in percent <code class="term-code">commission.percent'
        in english
    )
