"""`/guide` and `/guide/{role}`: a short guide per role (rider, driver, committee member,
reviewer, operator) in the page's language, from the Markdown of docs/guides/.

The Markdown is the co-op's own text, but it is rendered as if it were not: raw HTML in a file
is shown as text, never passed through, so a guide can only ever produce the few elements
Markdown itself makes (and markdown-it refuses `javascript:` and similar links)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from markdown_it import MarkdownIt
from markupsafe import Markup

from coop.errors import NotFound
from server.web.i18n import LANGUAGES
from server.web.pages.common import ViewerDep, page_router
from server.web.pages.messages import N_
from server.web.rendering import WEB_DIR, language_of, render

router = page_router()

# docs/guides/, linked into the package (server/web/guides) so that an installed service
# ships the same files the repository's readers see.
GUIDES_DIR = WEB_DIR / "guides"
# In the order a newcomer meets the service: riding, driving, then the members' offices.
ROLES = {
    "rider": N_("Riders"),
    "driver": N_("Drivers"),
    "committee": N_("The bargaining committee"),
    "reviewer": N_("Reviewers"),
    "operator": N_("Operators"),
}


class GuideNotFound(NotFound):
    type = "guide_not_found"
    # The page shows it in the visitor's language (`problem_message`, by the catalogue).
    title = N_(
        "There is no guide for this role. The guides are for riders, drivers, the committee, "
        "reviewers and operators."
    )


@dataclass(frozen=True)
class Guide:
    role: str
    language: str
    title: str
    summary: str
    html: Markup


def guide_path(role: str, language: str) -> Path:
    return GUIDES_DIR / f"{role}.{language}.md"


def _renderer() -> MarkdownIt:
    # CommonMark with raw HTML off (`html: False`, escaped instead) and tables on.
    return MarkdownIt("commonmark", {"html": False}).enable("table")


@cache
def guide(role: str, language: str) -> Guide:
    """A role's guide in `language`, read and rendered once per process."""
    if role not in ROLES or language not in LANGUAGES:
        raise GuideNotFound()
    text = guide_path(role, language).read_text(encoding="utf-8")
    markdown = _renderer()
    tokens = markdown.parse(text)
    title, summary = "", ""
    for index, token in enumerate(tokens):
        inline = tokens[index + 1] if index + 1 < len(tokens) else None
        if inline is None or inline.type != "inline":
            continue
        if token.type == "heading_open" and token.tag == "h1" and not title:
            title = inline.content
        elif token.type == "paragraph_open" and title and not summary:
            summary = "".join(
                " " if child.type in {"softbreak", "hardbreak"} else child.content
                for child in inline.children or []
            )
    # The page's own <h1> is the title; the file's heading is not repeated below it.
    body = markdown.render(text.split("\n", 1)[1] if text.startswith("# ") else text)
    return Guide(
        role=role,
        language=language,
        title=title,
        summary=summary,
        html=Markup(body),  # noqa: S704 - markdown-it escapes, and raw HTML is off
    )


@router.get("/guide", response_class=HTMLResponse)
async def guides_page(request: Request, viewer: ViewerDep) -> Response:
    language = language_of(request)
    return render(
        request,
        "guide_index.html",
        viewer,
        guides=[guide(role, language) for role in ROLES],
        role_names=ROLES,
    )


@router.get("/guide/{role}", response_class=HTMLResponse)
async def guide_page(request: Request, viewer: ViewerDep, role: str) -> Response:
    if role not in ROLES:
        raise GuideNotFound()
    language = language_of(request)
    return render(
        request,
        "guide.html",
        viewer,
        guide=guide(role, language),
        others=[(other, name) for other, name in ROLES.items() if other != role],
    )
