"""French pages say everything in French: the data register, the reasons a form field is refused
(as the API names the field) and the score's explanation, though the API below speaks English."""

from __future__ import annotations

import html
import re
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from reputation import data_register
from server.web.i18n import api_text
from tests.builders import assigned_trip, make_driver, make_rider
from tests.web.pages import EN, FR, csrf_of, sign_in, text_of


def field_errors(page: str) -> dict[str, str]:
    """`{field: reason}` of every `<p class="field-error">` of a page (`<strong>name</strong>:`)."""
    found = {}
    for match in re.finditer(r'<p class="field-error"[^>]*>(.*?)</p>', page, re.DOTALL):
        inner = match.group(1)
        name = re.search(r"<strong>(.*?)</strong>", inner)
        reason = html.unescape(re.sub(r"<[^>]+>", "", inner)).strip()
        key = name.group(1) if name else reason
        found[key] = reason
    return found


async def test_the_data_register_is_french_on_a_french_page(client: AsyncClient) -> None:
    page = text_of((await client.get("/transparency", headers=FR)).text)
    english = [data_register.NONE_SOLD, data_register.READERS_NOTE]
    for kind in data_register.REGISTER:
        english += [kind.description, kind.purpose, kind.retention, *kind.readers]
    for text in english:
        french = api_text("fr", text)
        assert french is not None and french != text, f"no French for {text!r}"
        assert text not in page, f"English on the French page: {text!r}"
        # The page's words with their spaces as `text_of` reads them (no-break ones too).
        assert re.sub(r"\s+", " ", french) in page, f"missing on the French page: {french!r}"
    # The English page still says it in English.
    assert data_register.REGISTER[0].description in text_of(
        (await client.get("/transparency", headers=EN)).text
    )


def _draft(form: dict[str, str], csrf: str, **changes: str) -> dict[str, str]:
    return {**form, "csrf": csrf, "action": "preview", **changes}


def _form_fields(page: str) -> dict[str, str]:
    fields = dict(
        re.findall(r'<input id="f-[^"]+" name="([^"]+)" type="[^"]+" value="([^"]*)"', page)
    )
    fields["rationale"] = "Pourquoi pas."
    return {name: html.unescape(value) for name, value in fields.items()}


async def test_a_refused_field_is_named_as_the_api_names_it_with_a_french_reason(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    committee = await make_driver(client, admin_headers, committee=True)
    await sign_in(client, committee.token)
    page = (await client.get("/proposals", headers=FR)).text
    form = _form_fields(page)
    csrf = csrf_of(page)
    attempts: list[dict[str, Any]] = [
        # pydantic's own refusals of fields
        {
            "title": "x" * 300,
            "rationale": "",
            "terms.commission.percent": "eight",
            "terms.reputation.window": "many",
            "terms.currency": "cad",
            "terms.commission.cap": "2.123456789",
            "voting_closes_at": "tomorrow",
        },
        # the rules between terms (bargaining.terms)
        {"terms.dispatch.max_wait_s": "1", "terms.fares.standard.per_km": "0.01"},
        # the service's rules on a proposal (bargaining.service)
        {"voting_closes_at": "2020-01-01T10:00"},
    ]
    for changes in attempts:
        pages = {
            language: (
                await client.post("/proposals", data=_draft(form, csrf, **changes), headers=headers)
            ).text
            for language, headers in (("fr", FR), ("en", EN))
        }
        french, english = field_errors(pages["fr"]), field_errors(pages["en"])
        assert french and french.keys() == english.keys(), (french, english)
        for name, reason in french.items():
            said = reason.removeprefix(name).removeprefix(":").strip()
            english_said = english[name].removeprefix(name).removeprefix(":").strip()
            assert said != english_said, f"{name}: the French page says {said!r}"
            assert english_said not in text_of(pages["fr"]), english_said
            assert "This value is not valid" not in said and "Cette valeur" not in said, (
                f"{name}: the reason {english_said!r} has no French template"
            )


async def test_the_score_explanation_and_appeal_errors_are_french(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    driver = await make_driver(client, admin_headers, name="Amira")
    reviewer = await make_driver(client, admin_headers, name="Samuel", reviewer=True)
    trip = await assigned_trip(app, client, rider, driver)
    for step in ("arrived", "start", "complete"):
        response = await client.post(f"/v1/trips/{trip['id']}/{step}", headers=driver.headers)
        assert response.status_code == 200, response.text
    rating = await client.post(
        f"/v1/trips/{trip['id']}/rating",
        headers=rider.headers,
        json={"stars": 3, "tags": ["wrong_route", "traffic"]},
    )
    assert rating.status_code == 201, rating.text
    explanation = (await client.get("/v1/drivers/me/reputation", headers=driver.headers)).json()[
        "explanation"
    ]

    await sign_in(client, driver.token)
    me = await client.get("/me", headers=FR)
    words = text_of(me.text)
    for sentence in re.split(r"(?<=\.) ", explanation):
        assert sentence not in words, f"English explanation on the French page: {sentence!r}"
    assert "Pas encore de note : 1 évaluation compte" in words
    assert "La personne au volant a pris un mauvais trajet" in words and "wrong_route" not in words
    # An empty appeal: the field as the API names it, the reason in French.
    refused = await client.post(
        "/me/appeals",
        data={"csrf": csrf_of(me.text), "rating_id": rating.json()["id"], "statement": " "},
        headers=FR,
    )
    errors = field_errors(refused.text)
    assert list(errors) == ["statement"]
    assert "Écrivez au moins 1 caractère" in errors["statement"], errors
    filed = await client.post(
        "/me/appeals",
        data={"csrf": csrf_of(me.text), "rating_id": rating.json()["id"], "statement": "Fermé."},
        headers=FR,
    )
    assert filed.status_code == 303

    await sign_in(client, reviewer.token)
    review = await client.get("/review", headers=FR)
    appeal_id = re.search(r'action="/review/([0-9a-f-]+)"', review.text)
    assert appeal_id
    refused = await client.post(
        f"/review/{appeal_id.group(1)}",
        data={"csrf": csrf_of(review.text), "outcome": "maybe", "reason": ""},
        headers=FR,
    )
    words = text_of(refused.text)
    assert "outcome: Valeurs possibles : 'rating_removed' ou 'rating_stands'" in words, words
    assert "reason: Écrivez au moins 1 caractère" in words
    assert "Input should be" not in words and "Text should" not in words
