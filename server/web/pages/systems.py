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
from server.decisions import AutomatedDecisions, register_in_force, review_figures
from server.web.i18n import api_text
from server.web.pages.common import ViewerDep, page_router
from server.web.rendering import language_of, render

router = page_router()


def _shown(name: str, value: Any, language: str) -> str:
    """A parameter's value as a person reads it: the fares, the commission, the floor, the
    law's dues, taxes and qualification items in words and figures, not as their JSON."""
    french = language.startswith("fr")

    def named(item: dict[str, Any]) -> str:
        names = item.get("name") or {}
        return str(names.get("fr" if french else "en") or item.get("key") or item.get("code"))

    if value is None:
        return "—"
    if name == "fares" and isinstance(value, dict):
        return "; ".join(
            f"{service_class}: {c['base']} + {c['per_km']}/km + {c['per_minute']}/min, "
            f"minimum {c['minimum']}"
            for service_class, c in value.items()
        )
    if name == "commission" and isinstance(value, dict):
        cap = value.get("cap")
        return f"{value['percent']} %" + (f", max. {cap}" if cap else "")
    if name == "driver_floor" and isinstance(value, dict):
        return f"{value['per_km']}/km + {value['per_minute']}/min"
    if name == "dues" and isinstance(value, dict):
        return f"{value['amount']} ({named(value)})"
    if name in {"taxes", "qualifications"} and isinstance(value, list):
        return (
            ", ".join(
                named(item) + (f" {item['percent']} %" if "percent" in item else "")
                for item in value
            )
            or "—"
        )
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "—"
    return str(value)


def _in_language(language: str, register: AutomatedDecisions) -> list[dict[str, Any]]:
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
                    "value": _shown(parameter.name, parameter.value, language),
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
        decisions=_in_language(language, register),
    )
