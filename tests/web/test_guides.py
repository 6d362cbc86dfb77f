"""The role guides (`/guide`, `/guide/{role}`, from docs/guides/): both languages, the 404 page
of a role without a guide, Markdown rendered without raw HTML, and every page, route and button
a guide names really there, for that role and in that language."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from markdown_it import MarkdownIt
from starlette.routing import Match

from server.web.i18n import catalogue
from server.web.pages.guide import ROLES, _renderer, guide, guide_path
from tests.builders import make_driver, make_rider
from tests.web.pages import EN, FR, sign_in, text_of

LANGUAGES = ("en", "fr")
GUIDES = [(role, language) for role in ROLES for language in LANGUAGES]
# `POST /v1/drivers`, `/me`: a route a guide names, with or without its method.
ROUTE = re.compile(r"^(?:(GET|POST|PUT|PATCH|DELETE) )?(/[\w/{}.-]*)$")
WORD = re.compile(r"\w+(?:['’-]\w+)*")


def _inline_tokens(role: str, language: str) -> list[object]:
    text = guide_path(role, language).read_text(encoding="utf-8")
    return [token for token in MarkdownIt("commonmark").parse(text) if token.type == "inline"]


def bold_names(role: str, language: str) -> list[str]:
    """What a guide sets in bold: the names of pages' buttons, fields and headings, each as
    the page shows it in the guide's language."""
    names: list[str] = []
    for token in _inline_tokens(role, language):
        inside, words = False, list[str]()
        for child in token.children or []:  # type: ignore[attr-defined]
            if child.type == "strong_open":
                inside, words = True, []
            elif child.type == "strong_close":
                inside = False
                names.append("".join(words))
            elif inside:
                words.append(" " if child.type == "softbreak" else child.content)
    return names


def routes_named(role: str, language: str) -> list[tuple[str | None, str]]:
    """Every `METHOD /path` or `/path` in a guide's code spans."""
    found = []
    for token in _inline_tokens(role, language):
        for child in token.children or []:  # type: ignore[attr-defined]
            if child.type == "code_inline" and (match := ROUTE.match(child.content)):
                found.append((match.group(1), match.group(2)))
    return found


def page_words() -> dict[str, set[str]]:
    """Every message the pages show, in English (the source) and in French (the catalogue)."""
    french = catalogue("fr")
    assert french is not None
    english: set[str] = set()
    translated: set[str] = set()
    for message in french:
        if not message.id:
            continue
        english.update([message.id] if isinstance(message.id, str) else message.id)
        string = message.string
        translated.update([string] if isinstance(string, str) else string or ())
    return {"en": english, "fr": translated}


@pytest.mark.parametrize(("role", "language"), GUIDES)
def test_each_guide_is_400_to_900_words(role: str, language: str) -> None:
    words = len(WORD.findall(guide_path(role, language).read_text(encoding="utf-8")))
    assert 400 <= words <= 900, f"{role}.{language}.md: {words} words"


@pytest.mark.parametrize("role", list(ROLES))
def test_a_guide_says_the_same_in_both_languages(role: str) -> None:
    """The French and the English guide have the same sections and the same steps."""

    def outline(language: str) -> list[str]:
        text = guide_path(role, language).read_text(encoding="utf-8")
        return [token.type for token in MarkdownIt("commonmark").parse(text) if token.nesting == 1]

    assert outline("fr") == outline("en")


def test_every_button_a_guide_names_is_on_the_pages_in_its_language() -> None:
    words = page_words()
    missing = [
        f"{role}.{language}.md: {name!r}"
        for role, language in GUIDES
        for name in bold_names(role, language)
        if name not in words[language]
    ]
    assert not missing, "named in a guide, shown by no page:\n" + "\n".join(missing)
    assert all(len(bold_names(role, language)) >= 8 for role, language in GUIDES)


def test_the_button_check_fails_on_a_name_no_page_shows() -> None:
    words = page_words()
    assert "Se connecter" in words["fr"] and "Sign in" in words["en"]
    assert "Log in" not in words["en"] and "Sign in" not in words["fr"]


def test_every_route_a_guide_names_exists(app: FastAPI) -> None:
    unknown = []
    for role, language in GUIDES:
        for method, path in routes_named(role, language):
            concrete = re.sub(r"\{\w+\}", "00000000-0000-0000-0000-000000000001", path)
            scope = {"type": "http", "path": concrete, "method": method or "GET"}
            if not any(route.matches(scope)[0] is Match.FULL for route in app.router.routes):
                unknown.append(f"{role}.{language}.md: {method or 'GET'} {path}")
    assert not unknown, "\n".join(unknown)


async def _signed_in_as(role: str, client: AsyncClient, admin_headers: dict[str, str]) -> None:
    if role == "operator":
        await sign_in(client, admin_headers["Authorization"].removeprefix("Bearer "))
    elif role == "rider":
        await sign_in(client, (await make_rider(client, "Guide Rider")).token)
    else:
        driver = await make_driver(
            client,
            admin_headers,
            name=f"Guide {role}",
            committee=role == "committee",
            reviewer=role == "reviewer",
        )
        await sign_in(client, driver.token)


@pytest.mark.parametrize("role", list(ROLES))
async def test_every_page_a_guide_names_opens_for_its_role(
    role: str, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    await _signed_in_as(role, client, admin_headers)
    pages = {
        path
        for language in LANGUAGES
        for method, path in routes_named(role, language)
        if method is None and not path.startswith("/v1")
    }
    assert pages, f"the {role} guide names no page"
    for path in sorted(pages):
        response = await client.get(path, follow_redirects=True)
        assert response.status_code == 200, f"{role}: {path} answers {response.status_code}"


async def test_the_guides_answer_in_both_languages(client: AsyncClient) -> None:
    for headers, language in ((EN, "en"), (FR, "fr")):
        index = await client.get("/guide", headers=headers)
        assert index.status_code == 200, index.text
        assert index.headers["content-language"] == language
        for role in ROLES:
            assert f'href="/guide/{role}"' in index.text
            assert guide(role, language).title in text_of(index.text)
            page = await client.get(f"/guide/{role}", headers=headers)
            assert page.status_code == 200, page.text
            assert page.headers["content-language"] == language
            words = text_of(page.text)
            assert guide(role, language).title in words
            assert "<h2>" in page.text and "<ol>" in page.text  # the Markdown, rendered
            assert "**" not in words and "](" not in words
    # The index's summary is the first paragraph in words, line breaks and code kept.
    assert "see the most it can cost" in guide("rider", "en").summary
    assert "Nothing to install: open /ride" in guide("rider", "en").summary
    assert guide("rider", "fr").title != guide("rider", "en").title
    assert "Se déplacer" in guide("rider", "fr").title


async def test_every_page_links_the_guides_in_its_footer(client: AsyncClient) -> None:
    for path in ("/", "/agreement", "/transparency", "/signin", "/guide/rider"):
        page = await client.get(path, headers=FR)
        footer = page.text.split('<footer class="foot">', 1)[1]
        for role in ROLES:
            assert f'href="/guide/{role}"' in footer, path
        assert ">Guides</a>" in footer


async def test_the_apps_link_their_roles_guide_before_and_after_signing_in(
    client: AsyncClient,
) -> None:
    # The apps have no footer: the guide is on the first screen and in the account menu.
    for path, role, words in (
        ("/ride", "rider", "le guide des personnes passagères"),
        ("/drive", "driver", "le guide des personnes au volant"),
    ):
        page = await client.get(path, headers=FR)
        assert page.text.count(f'href="/guide/{role}"') == 2, path
        assert words in page.text, path
        assert (await client.get(f"/guide/{role}", headers=FR)).status_code == 200


async def test_a_role_without_a_guide_is_the_404_page_in_the_visitors_language(
    client: AsyncClient,
) -> None:
    for role in ("admin", "rider.en", "security", "Rider", "x" * 300):
        page = await client.get(f"/guide/{role}", headers=FR)
        assert page.status_code == 404, role
        assert page.headers["content-type"].startswith("text/html"), role
        assert "Il n'y a pas de guide pour ce rôle." in text_of(page.text), role
    english = await client.get("/guide/admin", headers=EN)
    assert english.status_code == 404
    assert "There is no guide for this role." in text_of(english.text)


def test_a_guide_cannot_carry_raw_html_or_a_script_link() -> None:
    hostile = (
        "# Title\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n"
        "[click](javascript:alert(1)) and **<b>bold</b>**\n"
    )
    html = _renderer().render(hostile)
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;" in html
    assert 'href="javascript:' not in html
