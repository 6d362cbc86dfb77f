"""What the page tests share: signing in through the sign-in form, the CSRF field, a page's
words, and the two languages' headers."""

from __future__ import annotations

import html
import re

from httpx import AsyncClient

FR = {"Accept-Language": "fr-CA,fr;q=0.9"}
EN = {"Accept-Language": "en-CA,en;q=0.9"}


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


async def sign_in(client: AsyncClient, token: str) -> None:
    page = await client.get("/signin")
    response = await client.post(
        "/signin", data={"token": token, "csrf": csrf_of(page.text), "next": "/me"}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/me"


def text_of(page: str) -> str:
    """The page's words, tags removed, entities read."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))
