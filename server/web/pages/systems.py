"""`/systems`: every decision the service makes or supports automatically, in the reader's
language, with its parameters in force and how a person reviews it (the register of
server/decisions.py, as `GET /v1/transparency/automated-decisions` answers it)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from bargaining import service as bargaining_service
from coop import jurisdiction
from coop.clock import Now
from coop.dependencies import SessionDep
from coop.state import CoreState, state_of
from reputation.tags import TAGS
from server.decisions import AutomatedDecisions, register_in_force, review_figures
from server.web.i18n import COLON, SEMICOLON, Formatter, api_text, translations
from server.web.pages.common import ViewerDep, page_router
from server.web.rendering import formatter, language_of, render

router = page_router()
# The rating tags a person reads (their descriptions, translated), not their codes.
TAG_WORDS = {tag.code: tag.description for tag in TAGS}


def _shown(name: str, value: Any, f: Formatter) -> str:
    """A parameter's value as a person reads it: the fares, the commission, the floor, the
    law's dues, taxes and qualification items in words and figures, not as their JSON, and
    every number and amount written as the reader's language writes it (`f`)."""
    french = f.language == "fr"

    def named(item: dict[str, Any]) -> str:
        names = item.get("name") or {}
        return str(names.get("fr" if french else "en") or item.get("key") or item.get("code"))

    def rate(per_km: Any, per_minute: Any) -> str:
        return f"{f.money(per_km)}/km + {f.money(per_minute)}/min"

    if value is None:
        return "—"
    gettext = translations(f.language).gettext
    colon, semicolon = COLON[f.language], SEMICOLON[f.language]
    if name == "fares" and isinstance(value, dict):
        return semicolon.join(
            f"{gettext(service_class)}{colon}{f.money(c['base'])} + "
            f"{rate(c['per_km'], c['per_minute'])}, minimum {f.money(c['minimum'])}"
            for service_class, c in value.items()
        )
    if name == "commission" and isinstance(value, dict):
        cap = value.get("cap")
        return f.percent(value["percent"]) + (f", max. {f.money(cap)}" if cap else "")
    if name == "driver_floor" and isinstance(value, dict):
        return rate(value["per_km"], value["per_minute"])
    if name == "dues" and isinstance(value, dict):
        return f"{f.money(value['amount'])} ({named(value)})"
    if name in {"taxes", "qualifications"} and isinstance(value, list):
        return (
            ", ".join(
                named(item) + (f" {f.percent(item['percent'])}" if "percent" in item else "")
                for item in value
            )
            or "—"
        )
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if name.endswith("excluded_tags") and isinstance(value, list):
        return ", ".join(gettext(TAG_WORDS.get(str(tag), str(tag))) for tag in value) or "—"
    if isinstance(value, list):
        return ", ".join(_figure(item, f) for item in value) or "—"
    return _figure(value, f)


def _figure(value: Any, f: Formatter) -> str:
    return str(f.figure(value))


def _in_language(language: str, register: AutomatedDecisions, f: Formatter) -> list[dict[str, Any]]:
    def say(text: str) -> str:
        return api_text(language, text) or text

    return [
        {
            "key": decision.key,
            "decides": say(decision.decides),
            "data_used": [say(item) for item in decision.data_used],
            "parameters": [
                {
                    "name": parameter.name,
                    "source": parameter.source,
                    "value": _shown(parameter.name, parameter.value, f),
                    "importance": parameter.importance,
                    "meaning": say(parameter.meaning),
                }
                for parameter in decision.parameters
            ],
            "person": decision.person,
            "review": say(decision.review),
        }
        for decision in register.decisions
    ]


@router.get("/systems", response_class=HTMLResponse)
async def systems_page(
    request: Request, viewer: ViewerDep, session: SessionDep, now: Now
) -> Response:
    settings = state_of(request.app, CoreState).settings
    agreement = await bargaining_service.in_force(session=session, at=now)
    profile = jurisdiction.load(settings.jurisdiction)
    register = register_in_force(
        terms=agreement.terms,
        agreement_version=agreement.version,
        settings=settings,
        profile=profile,
    )
    register = register.model_copy(update=await review_figures(session=session, now=now))
    language = language_of(request)
    return render(
        request,
        "systems.html",
        viewer,
        register=register,
        place=profile.name.in_language(language),
        decisions=_in_language(language, register, formatter(request)),
    )
