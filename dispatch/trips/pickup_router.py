"""HTTP routes of the pickup's safety (docs/safety.md): the rider's word that the car at the curb
is theirs, and the driver's photo as the trip's rider sees it."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from coop.auth import CurrentPrincipal, Role
from coop.clock import Now
from coop.dependencies import RedisDep, SessionDep
from coop.errors import NotFound
from dispatch.trips import pin as pins
from dispatch.trips import push, queries, views
from dispatch.trips.exceptions import NotYourTrip
from dispatch.trips.schemas import TripOut
from drivers import photos
from riders.dependencies import CurrentRider

router = APIRouter(prefix="/v1", tags=["trips"])

_IMAGE_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The driver's approved photo (JPEG, no metadata)",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("/trips/{trip_id}/pin/confirm", response_model=TripOut)
async def confirm_pin(
    trip_id: uuid.UUID, rider: CurrentRider, session: SessionDep, redis: RedisDep, now: Now
) -> TripOut:
    """The trip's rider confirms from the app that the car at the curb is theirs (when the
    driver cannot give the PIN, or after five wrong ones): the driver may start without it.
    `409 no_pin` when the trip has no PIN waiting."""
    trip = await pins.confirm(session=session, trip_id=trip_id, rider_id=rider.id, now=now)
    seen = await views.views(session=session, trip=trip)
    await push.trip_changed(redis, seen)
    return seen.rider


class NoDriverPhoto(NotFound):
    type = "no_driver_photo"
    title = "No photo of this trip's driver to show"


@router.get("/trips/{trip_id}/driver/photo", response_class=Response, responses=_IMAGE_ANSWER)
async def read_driver_photo(
    trip_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """The photo of the trip's driver, for the trip's rider while the driver is coming and the
    ride lasts, once a person approved it (docs/security.md, "The driver's photo");
    `404 no_driver_photo` otherwise."""
    trip = await queries.load(session, trip_id)
    if principal.role is not Role.rider or principal.subject_id != trip.rider_id:
        raise NotYourTrip("Only the trip's rider sees its driver's photo")
    if trip.driver_id is None or trip.status not in views.PHOTO_VISIBLE:
        raise NoDriverPhoto("The trip has no driver on the way or aboard now")
    photo = await photos.approved_photo(session=session, driver_id=trip.driver_id)
    if photo is None:
        raise NoDriverPhoto("The driver has no approved photo")
    # Private and short: the rider's right to it ends with the trip.
    return Response(
        content=photo.data,
        media_type=photo.content_type,
        headers={"Cache-Control": "private, max-age=300"},
    )
