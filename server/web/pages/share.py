"""`/t/{token}`: the page of a shared trip, for whoever got the link (no sign-in, phone-sized,
French and English). It shows what `GET /v1/shared/{token}` answers, the same read model, and
follows the trip live over that route's event stream (static/share.js)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request, Response
from fastapi.responses import HTMLResponse

from coop.clients import client_host
from coop.clock import Now
from coop.dependencies import RedisDep, SessionDep
from coop.state import CoreState, state_of
from dispatch.safety import share, share_views
from dispatch.safety.share_opening import open_link
from dispatch.safety.share_views import SharedTripView
from dispatch.trips.state import TripsState
from server.web.pages.common import ViewerDep, page_router
from server.web.pages.messages import N_
from server.web.rendering import render, translate

router = page_router()

# What the page says of each state, in the visitor's language (the script shows them live).
STATES = {
    "requested": N_("Looking for a driver"),
    "assigned": N_("The driver is on the way to the pickup"),
    "arrived": N_("The driver is at the pickup"),
    "in_progress": N_("On the way to the destination"),
    "completed": N_("The trip has ended"),
    "cancelled": N_("The trip was cancelled"),
    "unfulfilled": N_("No driver could be found; the trip is over"),
}


@router.get("/t/{token}", response_class=HTMLResponse)
async def shared_trip_page(
    request: Request,
    token: Annotated[str, Path(min_length=1, max_length=share.TOKEN_MAX_CHARS)],
    viewer: ViewerDep,
    session: SessionDep,
    redis: RedisDep,
    now: Now,
) -> Response:
    core = state_of(request.app, CoreState)
    found, _ = await open_link(
        session=session,
        redis=redis,
        limits=core.rate_limits,
        client=client_host(request.scope),
        token=token,
        now=now,
    )
    row = (await share_views.rows(session=session, share_ids=[found.id], now=now))[found.id]
    trip = SharedTripView.of(row, state_of(request.app, TripsState).route_duration(now))
    labels = {status: translate(request, text) for status, text in STATES.items()}
    labels.update(
        {
            "eta_pickup": translate(request, "At the pickup in about %(min)s min"),
            "eta_destination": translate(request, "At the destination in about %(min)s min"),
            "live": translate(request, "Live"),
            "lost": translate(request, "Connection lost; reconnecting…"),
            "gone": translate(request, "This link no longer works."),
            "ended": translate(request, "Following has stopped: the trip is over."),
            "car": translate(request, "Car"),
            "heading": translate(request, "Heading here"),
        }
    )
    response = render(
        request,
        "share.html",
        viewer,
        trip=trip,
        state_text=labels[trip.status],
        config={
            "token": token,
            "trip": trip.model_dump(mode="json"),
            "labels": labels,
            "area": core.service_area.geometry.__geo_interface__,
            "tiles": core.settings.map_tiles_url,
            "attribution": core.settings.map_tiles_attribution,
        },
    )
    # The link is the key to the page: no search engine keeps it, no other site learns it.
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
