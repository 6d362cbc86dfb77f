"""What the rider app (`/ride`) and the driver app (`/drive`) share on the server: the shell
page, the web app manifest and the service worker (docs/apps.md).

The shells are the only thing the server renders for the apps: every figure the apps show comes
from the public API and sockets (docs/protocol.md), so they are also the reference clients a
native app can copy. The server gives a shell its words (French or English, from the
catalogue), the service area and the map's tiles setting.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any, Literal

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from coop.state import CoreState, state_of
from server.web.pages.push_words import notification_words
from server.web.rendering import STATIC_DIR, Viewer, language_of, render, translate

App = Literal["ride", "drive"]
APPS_DIR = STATIC_DIR / "apps"
LEAFLET = "/static/vendor/leaflet-1.9.4"

# The shell: what the app needs to start without the network. Never an API answer: those are
# personal, change every second, and an old one shown as current would mislead.
SHARED_ASSETS = (
    f"{LEAFLET}/leaflet.js",
    f"{LEAFLET}/leaflet.css",
    "/static/apps/apps.css",
    "/static/apps/common.js",
    "/static/apps/live.js",
    "/static/apps/mapview.js",
    "/static/apps/safety.js",
    "/static/apps/push.js",
)


def assets(app: App) -> tuple[str, ...]:
    return (
        *SHARED_ASSETS,
        f"/static/apps/{app}.js",
        f"/static/apps/{app}-192.png",
        f"/static/apps/{app}-512.png",
    )


@cache
def assets_version(app: App) -> str:
    """A digest of the shell's files: a new release of any of them is a new cache, so an
    installed app never mixes old and new scripts."""
    digest = hashlib.sha256()
    for path in (*assets(app), "/static/apps/sw.js"):
        digest.update((STATIC_DIR / path.removeprefix("/static/")).read_bytes())
    return digest.hexdigest()[:16]


def shell(request: Request, app: App, **extra: Any) -> HTMLResponse:
    """The app's page: its layout, its words (in the template), and where the map is."""
    core = state_of(request.app, CoreState)
    settings = core.settings
    config: dict[str, Any] = {
        "app": app,
        "lang": language_of(request),
        "area": core.service_area.geometry.__geo_interface__,
        "tiles": settings.map_tiles_url,
        "attribution": settings.map_tiles_attribution,
        "worker": f"/{app}-sw.js",
        "scope": f"/{app}",
    }
    config.update(extra)
    response = render(request, f"apps/{app}.html", Viewer(), app=app, config=config)
    # The shell is the same for everyone in a language; the service worker keeps a copy for
    # when the network is away. Personal data never is in it.
    response.headers["Cache-Control"] = "no-cache"
    return response


def manifest(request: Request, app: App, *, name: str, short_name: str) -> Response:
    """The web app manifest that makes the app installable, in the visitor's language."""
    body = {
        "name": name,
        "short_name": short_name,
        "lang": language_of(request),
        "start_url": f"/{app}",
        "scope": f"/{app}",
        "id": f"/{app}",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff" if app == "ride" else "#101614",
        "theme_color": "#0b5d3b",
        "description": translate(
            request, "A ride-hail service owned by the drivers' union co-operative."
        ),
        "icons": [
            {"src": f"/static/apps/{app}-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": f"/static/apps/{app}-512.png", "sizes": "512x512", "type": "image/png"},
            {
                "src": f"/static/apps/{app}-512.png",
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
        ],
    }
    return Response(
        json.dumps(body, ensure_ascii=False),
        media_type="application/manifest+json",
        headers={"Cache-Control": "no-cache", "Vary": "Accept-Language, Cookie"},
    )


def service_worker(app: App) -> Response:
    """The app's service worker, told which files are its shell and their version. Served from
    the site's root so that its scope can be `/{app}` (a worker's scope cannot be above the
    folder it is served from)."""
    source = (APPS_DIR / "sw.js").read_text(encoding="utf-8")
    header = (
        f"const APP = {json.dumps(app)};\n"
        f"const VERSION = {json.dumps(assets_version(app))};\n"
        f"const SHELL = {json.dumps([f'/{app}', *assets(app)])};\n"
        # A push is shown while no page is open, in the device's language: the worker carries
        # the words of every language (a few hundred bytes each).
        f"const WORDS = {json.dumps(notification_words(), ensure_ascii=False)};\n"
    )
    return Response(
        header + source,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": f"/{app}"},
    )
