"""The co-op's web pages (docs/web.md): server-rendered, French and English, every asset served
by the service itself. Composition: the pages call the same functions as the API."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from coop.state import CoreState, state_of
from server.web import ops, pages
from server.web.rendering import STATIC_DIR

SWAGGER = "/static/vendor/swagger-ui-dist-5.30.2"
REDOC = "/static/vendor/redoc-2.5.1"

# The pages' own policy: scripts and styles from this service only (the map's tile server, when
# one is set, for images). /docs and /redoc render with inline scripts of their own, so they keep
# the browser's default. `blob:` images: the rider app shows the driver's photo, fetched with the
# rider's key (an <img src> cannot send it), through a blob URL made by the page itself.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob: {tiles}; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def _tile_origin(url: str) -> str:
    if not url.startswith(("https://", "http://")):
        return ""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/')[0]}"


def install(app: FastAPI) -> None:
    """Mounts the pages, their assets and the offline API documentation on `app`."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(pages.router)
    app.include_router(ops.router)
    tiles_url = state_of(app, CoreState).settings.map_tiles_url
    csp = CSP.format(tiles=_tile_origin(tiles_url)).replace("  ", " ")

    @app.middleware("http")
    async def page_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        content_type = response.headers.get("content-type", "")
        path = request.url.path
        if content_type.startswith("text/html") and path not in {"/docs", "/redoc"}:
            response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — API",
            redoc_js_url=f"{REDOC}/redoc.standalone.js",
            redoc_favicon_url=f"{SWAGGER}/favicon-32x32.png",
            with_google_fonts=False,
        )


running = ops.running

__all__ = ["install", "running"]
