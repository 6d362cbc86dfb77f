"""HTTP routes of Share my trip (docs/protocol.md, "Share my trip"): a party makes and revokes
links; anyone holding one reads the trip, once or as a live Server-Sent Events stream."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response, status
from fastapi.responses import StreamingResponse

from coop.auth import CurrentPrincipal
from coop.clients import client_host
from coop.clock import Now
from coop.dependencies import RedisDep, SessionDep
from coop.state import CoreState, state_of
from dispatch.safety import share, share_views
from dispatch.safety.share_feed import KEEPALIVE_S, RETRY_MS, event_of, feed_of
from dispatch.safety.share_models import TripShare
from dispatch.safety.share_opening import open_link
from dispatch.safety.share_views import ShareCreatedOut, SharedTripView
from dispatch.trips import views as trip_views
from dispatch.trips.models import Trip
from dispatch.trips.state import TripsState
from drivers import photos

router = APIRouter(prefix="/v1", tags=["safety"])

Token = Annotated[str, Path(min_length=1, max_length=share.TOKEN_MAX_CHARS)]

_PARTY: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid token"},
    403: {"description": "Not a party to this trip (not_your_trip)"},
    404: {"description": "No such trip (trip_not_found), or link (share_not_found)"},
    409: {"description": "The trip is over (trip_over), or share_limit_reached"},
}
_PUBLIC: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such link, or revoked, or expired: one answer (share_not_found)"},
}


def share_url(request: Request, token: str) -> str:
    return str(request.base_url).rstrip("/") + f"/t/{token}"


@router.post(
    "/trips/{trip_id}/share",
    status_code=status.HTTP_201_CREATED,
    response_model=ShareCreatedOut,
    responses=_PARTY,
)
async def create_share(
    trip_id: uuid.UUID, request: Request, principal: CurrentPrincipal, session: SessionDep, now: Now
) -> ShareCreatedOut:
    """A link others can follow the trip with, made by its rider or its driver while it is
    open: `token` and `url` are shown this once. It works until 30 minutes after the trip ends,
    or until its maker revokes it."""
    made = await share.create(session=session, trip_id=trip_id, principal=principal, now=now)
    return ShareCreatedOut(
        id=made.share.id,
        token=made.token,
        url=share_url(request, made.token),
        expires_at=made.expires_at,
    )


@router.delete(
    "/trips/{trip_id}/share/{token}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_PARTY,
)
async def revoke_share(
    trip_id: uuid.UUID, token: Token, principal: CurrentPrincipal, session: SessionDep, now: Now
) -> Response:
    """Ends one of the caller's links to the trip now (its page answers `404` from then on)."""
    await share.revoke(session=session, trip_id=trip_id, token=token, principal=principal, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/shared/{token}", response_model=SharedTripView, responses=_PUBLIC)
async def read_shared(
    token: Token, request: Request, session: SessionDep, redis: RedisDep, now: Now
) -> SharedTripView:
    """The shared trip, to anyone holding the link (no token): the driver's first name, the car
    and plate, the car's position and ETA while the trip is open, and its state."""
    found, _ = await open_link(
        session=session,
        redis=redis,
        limits=state_of(request.app, CoreState).rate_limits,
        client=client_host(request.scope),
        token=token,
        now=now,
    )
    row = (await share_views.rows(session=session, share_ids=[found.id], now=now))[found.id]
    return SharedTripView.of(row, state_of(request.app, TripsState).route_duration(now))


@router.get(
    "/shared/{token}/events",
    responses={
        **_PUBLIC,
        200: {
            "description": "`text/event-stream`: a `trip` event (the shared trip, as `GET "
            "/v1/shared/{token}` answers it) at once and whenever it changes; `gone` when the "
            "link is revoked or expires. The stream ends after the trip's last state.",
            "content": {"text/event-stream": {}},
        },
    },
)
async def shared_events(
    token: Token, request: Request, session: SessionDep, redis: RedisDep, now: Now
) -> StreamingResponse:
    """The shared trip pushed live as Server-Sent Events (no token)."""
    found, _ = await open_link(
        session=session,
        redis=redis,
        limits=state_of(request.app, CoreState).rate_limits,
        client=client_host(request.scope),
        token=token,
        now=now,
    )
    share_id = found.id
    rows = await share_views.rows(session=session, share_ids=[share_id], now=now)
    first, last = event_of(rows.get(share_id), request.app, now)
    await session.close()  # the stream holds no database connection while it waits
    feed = feed_of(request.app)

    async def events() -> AsyncIterator[bytes]:
        yield f"retry: {RETRY_MS}\n\n".encode()
        yield first
        if last:
            return
        feed.watch(share_id)
        try:
            generation = feed.generation
            seen = 0
            previous = first  # the producer's first read repeats what was just sent
            while True:
                seen, event, ends = await feed.next_event(share_id, seen, generation, KEEPALIVE_S)
                if event is not None and event != previous:
                    previous = event
                    yield event
                elif event is None and not ends:
                    yield b": keepalive\n\n"
                if ends:
                    return
        finally:
            feed.unwatch(share_id)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/shared/{share_id}/photo",
    response_class=Response,
    responses={
        **_PUBLIC,
        200: {
            "description": "The driver's approved photo (JPEG, no metadata)",
            "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
        },
    },
)
async def read_shared_photo(share_id: uuid.UUID, session: SessionDep, now: Now) -> Response:
    """The driver's photo to whoever follows the trip through a link (the link's view gives
    this address): only while the link lives and the driver is on the trip, once a person
    approved the photo; `404 share_not_found` otherwise, one answer for every reason."""
    found = await session.get(TripShare, share_id)
    trip = None if found is None else await session.get(Trip, found.trip_id)
    if found is None or trip is None or not share.is_live(found, trip, now):
        raise share.ShareNotFound()
    if trip.driver_id is None or trip.status not in trip_views.PHOTO_VISIBLE:
        raise share.ShareNotFound()
    photo = await photos.approved_photo(session=session, driver_id=trip.driver_id)
    if photo is None:
        raise share.ShareNotFound()
    return Response(
        content=photo.data,
        media_type=photo.content_type,
        headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
    )
