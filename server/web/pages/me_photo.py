"""A driver's photo on their own page (/me): its state, and the form to upload one. The same
service functions as `PUT /v1/drivers/me/photo` (drivers/photos.py): the page adds the form and
the words."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import File, Form, Request, Response, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from coop.clock import Now
from coop.dependencies import SessionDep
from drivers import photos
from drivers.models import DriverPhoto
from server.web.pages.common import ViewerDep, check_csrf, driver_of, page_router
from server.web.pages.messages import N_
from server.web.rendering import translate

router = page_router()

# The upload's own path: the one page form whose body may exceed COOP_MAX_BODY_BYTES.
UPLOAD_PATH = "/me/photo"
PHOTO_STATES = {
    "pending": N_("Waiting for a person of the co-op to look at it: riders do not see it yet."),
    "approved": N_("The riders of your trips see it while you come for them."),
    "rejected": N_("Not approved. The reason:"),
}
PHOTO_REFUSALS = {
    photos.PhotoNotAnImage.type: N_("This file is not a JPEG or PNG photo this service can read."),
    photos.PhotoDimensions.type: N_(
        "The photo must be 200 to 8,000 pixels on each side; take or choose another."
    ),
    photos.PhotoTooLarge.type: N_("The photo is larger than 5 MB; choose a smaller one."),
}


async def photo_context(
    request: Request, session: AsyncSession, driver_id: uuid.UUID
) -> dict[str, Any]:
    """What the photo's card on /me shows: the photo's state, and the refusal of the last
    upload if the page was sent back with one."""
    refused = request.query_params.get("photo_error", "")
    return {
        "photo": await session.get(DriverPhoto, driver_id),
        "photo_states": PHOTO_STATES,
        "photo_error": translate(request, PHOTO_REFUSALS[refused])
        if refused in PHOTO_REFUSALS
        else None,
    }


@router.post(UPLOAD_PATH)
async def upload_photo(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    now: Now,
    photo: Annotated[UploadFile | None, File()] = None,
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    check_csrf(request, csrf)
    driver = await driver_of(viewer, session)
    data = b"" if photo is None else await photo.read(photos.PHOTO_MAX_BYTES + 1)
    try:
        await photos.upload(session=session, driver_id=driver.id, data=data, now=now)
    except (photos.PhotoNotAnImage, photos.PhotoDimensions, photos.PhotoTooLarge) as problem:
        await session.rollback()
        # The page shows the refusal in the photo's card (`photo_context`).
        return RedirectResponse(f"/me?photo_error={problem.type}#photo", status_code=303)
    return RedirectResponse("/me#photo", status_code=303)


@router.get("/me/photo/image")
async def my_photo_image(viewer: ViewerDep, session: SessionDep) -> Response:
    """The signed-in driver's photo as kept, whatever its state (their page shows it)."""
    driver = await driver_of(viewer, session)
    photo = await photos.get(session=session, driver_id=driver.id)
    return Response(
        content=photo.image,
        media_type=photo.content_type,
        headers={"Cache-Control": "private, no-store"},
    )
