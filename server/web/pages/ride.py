"""The rider app, `/ride`: request a trip, follow it, read the receipt and rate (docs/apps.md).

A shell for the browser; the app itself is `static/apps/ride.js`, on the public API only.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from reputation.tags import TAGS
from server.web.pages import apps
from server.web.rendering import translate

router = APIRouter(include_in_schema=False)


@router.get("/ride", response_class=HTMLResponse)
async def ride(request: Request) -> Response:
    # The tags' words for people; which tags exist is the API's answer (GET /v1/ratings/tags).
    tags = {tag.code: translate(request, tag.description) for tag in TAGS}
    return apps.shell(request, "ride", tags=tags)


@router.get("/ride/manifest.webmanifest")
async def ride_manifest(request: Request) -> Response:
    return apps.manifest(
        request,
        "ride",
        name=translate(request, "Co-op ride: the rider app"),
        short_name=translate(request, "Co-op ride"),
    )


@router.get("/ride-sw.js")
async def ride_worker() -> Response:
    return apps.service_worker("ride")
