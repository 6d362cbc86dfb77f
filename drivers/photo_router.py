"""HTTP routes of a driver's photo: the driver uploads it, an operator approves or rejects it
(docs/protocol.md, "Driver photo"). Riders read an approved photo through their trip
(`GET /v1/trips/{trip_id}/driver/photo`), never by the driver's id."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from coop.auth import Admin
from coop.clock import Now
from coop.dependencies import SessionDep
from coop.text import FreeText
from drivers import photos
from drivers.dependencies import CurrentDriver
from drivers.models import Driver, DriverPhoto

router = APIRouter(prefix="/v1/drivers", tags=["drivers"])

_IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": f"The photo file itself as the body: JPEG or PNG, at most "
        f"{photos.PHOTO_MAX_BYTES} bytes, {photos.PHOTO_MIN_SIDE_PX} to "
        f"{photos.PHOTO_MAX_SIDE_PX} px a side",
        "content": {
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
_IMAGE_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The photo as re-encoded by the service (JPEG, no metadata)",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class PhotoOut(BaseModel):
    """A driver's photo as its state: the image itself is a separate read."""

    model_config = ConfigDict(from_attributes=True)

    driver_id: uuid.UUID
    status: str = Field(description="pending, approved or rejected", examples=["pending"])
    uploaded_at: datetime
    decided_at: datetime | None
    reason: str | None = Field(description="Why a person rejected it (null unless rejected)")
    width_px: int
    height_px: int
    sha256: str = Field(description="The digest of the stored (re-encoded) image")


class PendingPhotoOut(PhotoOut):
    driver_name: str


class PhotoApproval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="The digest of the photo you looked at: a photo replaced since is `409`",
    )


class PhotoRejection(PhotoApproval):
    reason: Annotated[str, FreeText(max_chars=500)] = Field(
        description="Why, in words the driver reads (shown to them on /me)"
    )


def _out(photo: DriverPhoto) -> PhotoOut:
    return PhotoOut(
        driver_id=photo.driver_id,
        status=photo.status.value,
        uploaded_at=photo.uploaded_at,
        decided_at=photo.decided_at,
        reason=photo.reason,
        width_px=photo.width_px,
        height_px=photo.height_px,
        sha256=photo.sha256,
    )


def image_response(data: bytes, content_type: str) -> Response:
    # Private: a shared cache must never keep a photo meant for one trip's rider.
    return Response(
        content=data, media_type=content_type, headers={"Cache-Control": "private, max-age=300"}
    )


@router.put("/me/photo", response_model=PhotoOut, openapi_extra=_IMAGE_BODY)
async def upload_my_photo(
    request: Request, driver: CurrentDriver, session: SessionDep, now: Now
) -> PhotoOut:
    """Uploads (or replaces) my photo, the file as the body. It is re-encoded (orientation
    applied, scaled to at most 800 px, every metadata dropped) and waits for a person's approval
    before riders see it: `422 photo_not_an_image` or `422 photo_dimensions` for a bad file,
    `413` past the size limit."""
    photo = await photos.upload(
        session=session, driver_id=driver.id, data=await request.body(), now=now
    )
    return _out(photo)


@router.get("/me/photo", response_model=PhotoOut)
async def read_my_photo(driver: CurrentDriver, session: SessionDep) -> PhotoOut:
    """My photo's state (pending, approved, rejected with the reason); `404 no_photo` if none."""
    return _out(await photos.get(session=session, driver_id=driver.id))


@router.get("/me/photo/image", response_class=Response, responses=_IMAGE_ANSWER)
async def read_my_photo_image(driver: CurrentDriver, session: SessionDep) -> Response:
    """My photo as stored (whatever its state): what riders will see once it is approved."""
    photo = await photos.get(session=session, driver_id=driver.id)
    return image_response(photo.image, photo.content_type)


@router.get("/photos/pending", response_model=list[PendingPhotoOut])
async def list_pending_photos(
    session: SessionDep,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[PendingPhotoOut]:
    """Photos waiting for a person (admin only), oldest upload first."""
    waiting = await photos.pending(session=session, limit=limit)
    found = await session.execute(
        select(Driver.id, Driver.name).where(Driver.id.in_([photo.driver_id for photo in waiting]))
    )
    names = {row.id: row.name for row in found}
    return [
        PendingPhotoOut(**_out(photo).model_dump(), driver_name=names.get(photo.driver_id, ""))
        for photo in waiting
    ]


@router.get("/{driver_id}/photo", response_class=Response, responses=_IMAGE_ANSWER)
async def read_photo_image(driver_id: uuid.UUID, session: SessionDep, _: Admin) -> Response:
    """A driver's photo as stored, whatever its state (admin only: to decide on it)."""
    photo = await photos.get(session=session, driver_id=driver_id)
    return image_response(photo.image, photo.content_type)


@router.post("/{driver_id}/photo/approve", response_model=PhotoOut)
async def approve_photo(
    driver_id: uuid.UUID, body: PhotoApproval, session: SessionDep, admin: Admin, now: Now
) -> PhotoOut:
    """Approves a pending photo (admin only, audited): riders of the driver's trips see it from
    now on. `409 photo_already_decided` if it was decided, or replaced since `sha256`."""
    photo = await photos.decide(
        session=session,
        driver_id=driver_id,
        sha256=body.sha256,
        approve=True,
        reason=None,
        decided_by=admin.account,
        now=now,
    )
    return _out(photo)


@router.post("/{driver_id}/photo/reject", response_model=PhotoOut)
async def reject_photo(
    driver_id: uuid.UUID, body: PhotoRejection, session: SessionDep, admin: Admin, now: Now
) -> PhotoOut:
    """Rejects a pending photo with a reason the driver reads (admin only, audited); the driver
    may upload another. `409 photo_already_decided` as for approval."""
    photo = await photos.decide(
        session=session,
        driver_id=driver_id,
        sha256=body.sha256,
        approve=False,
        reason=body.reason,
        decided_by=admin.account,
        now=now,
    )
    return _out(photo)
