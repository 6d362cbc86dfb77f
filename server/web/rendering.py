"""Templates: one Jinja environment, rendered with the request's language, user and CSRF value."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from coop.auth import Principal, Role
from coop.state import CoreState, state_of
from drivers.models import Driver
from riders.models import Rider
from server.web import i18n, sessions

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.install_null_translations(newstyle=True)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page, and what their account lets them do: the same flags the API
    checks (drivers.dependencies, coop.auth)."""

    principal: Principal | None = None
    driver: Driver | None = None
    rider: Rider | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # What the pages show of the account, read once while it is loaded: a service that refuses
    # rolls its transaction back, which expires the ORM objects, and the error page must not
    # load them again (a lazy load outside the async driver's context is a 500, not the page).
    _shown: tuple[str, bool, bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.driver is not None:
            shown = (self.driver.name, self.driver.committee, self.driver.reviewer)
        elif self.rider is not None:
            shown = (self.rider.name, False, False)
        else:
            shown = ("admin" if self.is_admin else "", False, False)
        object.__setattr__(self, "_shown", shown)

    @property
    def signed_in(self) -> bool:
        return self.principal is not None

    @property
    def is_admin(self) -> bool:
        return self.principal is not None and self.principal.role is Role.admin

    @property
    def is_committee(self) -> bool:
        return self._shown[1]

    @property
    def is_reviewer(self) -> bool:
        return self._shown[2]

    @property
    def sees_operations(self) -> bool:
        """The live map shows where every driver is: operators (admin) and the committee."""
        return self.is_admin or self.is_committee

    @property
    def name(self) -> str:
        return self._shown[0]


def language_of(request: Request) -> str:
    cached: str | None = getattr(request.state, "language", None)
    if cached is None:
        cached = i18n.negotiate(
            request.headers.get("accept-language"), request.cookies.get(i18n.LANGUAGE_COOKIE)
        )
        request.state.language = cached
    return cached


def formatter(request: Request) -> i18n.Formatter:
    return i18n.Formatter(
        language=language_of(request),
        zone=ZoneInfo(state_of(request.app, CoreState).settings.time_zone),
    )


def translate(request: Request, message: str, **variables: Any) -> str:
    text = i18n.translations(language_of(request)).gettext(message)
    return text % variables if variables else text


def translate_plural(
    request: Request, singular: str, plural: str, num: int, **variables: Any
) -> str:
    """`translate` of a message with a plural form ("1 étoile", "2 étoiles"); `%(num)s` is
    `num`."""
    text = i18n.translations(language_of(request)).ngettext(singular, plural, num)
    return text % {"num": num, **variables}


def render(
    request: Request,
    template: str,
    viewer: Viewer,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    language = language_of(request)
    path = request.url.path
    query = request.url.query
    here = path + ("?" + query if query else "")
    body = environment.get_template(template).render(
        request=request,
        viewer=viewer,
        lang=language,
        languages=i18n.LANGUAGE_NAMES,
        here=here,
        path=path,
        csrf=sessions.csrf_value(request),
        f=formatter(request),
        # Punctuation between words the template writes itself ("name: value"): French puts
        # a no-break space before `:` and a narrow one before `;` (docs/french.md).
        colon=i18n.COLON[language],
        semicolon=i18n.SEMICOLON[language],
        **i18n.template_callables(language),
        **context,
    )
    response = HTMLResponse(body, status_code=status_code)
    response.headers["Content-Language"] = language
    response.headers["Vary"] = "Accept-Language, Cookie"
    response.headers["Cache-Control"] = "no-store"
    sessions.remember_csrf(request, response)
    return response
