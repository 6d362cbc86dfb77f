"""The driver app, `/drive`: go available, report positions, take offers and drive trips
(docs/apps.md). A shell for the browser; the app itself is `static/apps/drive.js`, on the
public API and the driver's socket only.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from server.web.pages import apps
from server.web.rendering import translate

router = APIRouter(include_in_schema=False)


@router.get("/drive", response_class=HTMLResponse)
async def drive(request: Request) -> Response:
    return apps.shell(request, "drive")


@router.get("/drive/manifest.webmanifest")
async def drive_manifest(request: Request) -> Response:
    return apps.manifest(
        request,
        "drive",
        name=translate(request, "Co-op ride: the driver app"),
        short_name=translate(request, "Co-op drive"),
    )


@router.get("/drive-sw.js")
async def drive_worker() -> Response:
    return apps.service_worker("drive")
