"""A driver's photo (docs/safety.md, "Who is coming"): one per driver, uploaded by them,
re-encoded here so nothing of the file they sent is kept but its pixels, and shown to riders only
once a person approved it.

Who may read the image is decided by the callers above (the trip's rider while the trip is
current, operators); this module answers only what the photo is and whether it is approved.
"""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coop import audit
from coop.errors import Conflict, NotFound, ProblemError, UnprocessableEntity
from drivers.models import DriverPhoto, PhotoStatus

# What a phone sends of a portrait fits easily; more is a scan or a raw file.
PHOTO_MAX_BYTES = 5 * 1024 * 1024
# A face a rider can recognise needs this many pixels on the short side...
PHOTO_MIN_SIDE_PX = 200
# ...and nothing larger than a phone camera's frame is decoded (a small file can declare a huge
# canvas: decoding it would take the worker's memory).
PHOTO_MAX_SIDE_PX = 8000
PHOTO_MAX_PIXELS = 40_000_000
# What is kept and served: enough for a phone screen, small enough to send on every assignment.
STORED_MAX_SIDE_PX = 800
STORED_JPEG_QUALITY = 85
STORED_CONTENT_TYPE = "image/jpeg"
ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}
AUDIT_KIND = "driver_photo_decision"


class PhotoNotAnImage(UnprocessableEntity):
    type = "photo_not_an_image"
    title = "The photo must be a JPEG or PNG image"


class PhotoDimensions(UnprocessableEntity):
    type = "photo_dimensions"
    title = "The photo's width or height is outside the limits"


class PhotoTooLarge(ProblemError):
    status = 413
    type = "payload_too_large"
    title = "Payload too large"


class NoPhoto(NotFound):
    type = "no_photo"
    title = "No photo"


class PhotoAlreadyDecided(Conflict):
    type = "photo_already_decided"
    title = "This photo was already decided"


@dataclass(frozen=True)
class CleanImage:
    """An uploaded photo as it will be kept: re-encoded pixels, no metadata."""

    data: bytes
    content_type: str
    width_px: int
    height_px: int
    sha256: str


@dataclass(frozen=True)
class ApprovedPhoto:
    """The bytes of a driver's approved photo, for whoever the caller decided may see them."""

    driver_id: uuid.UUID
    data: bytes
    content_type: str
    sha256: str


def clean_image(data: bytes) -> CleanImage:
    """Validates an upload and re-encodes it: the orientation applied, any transparency laid on
    white, scaled to at most STORED_MAX_SIDE_PX, written as a new JPEG that carries none of the
    original's metadata (EXIF, GPS, ICC, comments, thumbnails)."""
    if len(data) > PHOTO_MAX_BYTES:
        raise PhotoTooLarge(f"The photo is {len(data)} bytes; the limit is {PHOTO_MAX_BYTES}")
    if not data:
        raise PhotoNotAnImage("The body is empty: send the JPEG or PNG file as the body")
    try:
        with warnings.catch_warnings():
            # A declared canvas past Pillow's own bomb threshold is refused below by size.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            source = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise PhotoDimensions("The image declares far more pixels than any photo") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PhotoNotAnImage("The file is not an image this service can read") from exc
    with source:
        if source.format not in ACCEPTED_FORMATS:
            raise PhotoNotAnImage(f"The image is {source.format}; send a JPEG or a PNG")
        width_px, height_px = source.size
        if max(width_px, height_px) > PHOTO_MAX_SIDE_PX or width_px * height_px > PHOTO_MAX_PIXELS:
            raise PhotoDimensions(
                f"The image is {width_px}×{height_px} px; at most {PHOTO_MAX_SIDE_PX} px a side "
                f"and {PHOTO_MAX_PIXELS} pixels"
            )
        if min(width_px, height_px) < PHOTO_MIN_SIDE_PX:
            raise PhotoDimensions(
                f"The image is {width_px}×{height_px} px; at least {PHOTO_MIN_SIDE_PX} px a side, "
                "so riders can recognise you"
            )
        try:
            source.load()
            upright = ImageOps.exif_transpose(source)
            rgba = upright.convert("RGBA")
        except (OSError, ValueError, SyntaxError) as exc:
            raise PhotoNotAnImage("The image is damaged or truncated") from exc
    # A new canvas: nothing of the source's `info` (metadata) comes along.
    clean = Image.new("RGB", rgba.size, (255, 255, 255))
    clean.paste(rgba, mask=rgba.getchannel("A"))
    clean.thumbnail((STORED_MAX_SIDE_PX, STORED_MAX_SIDE_PX), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    clean.save(out, format="JPEG", quality=STORED_JPEG_QUALITY, optimize=True)
    encoded = out.getvalue()
    return CleanImage(
        data=encoded,
        content_type=STORED_CONTENT_TYPE,
        width_px=clean.width,
        height_px=clean.height,
        sha256=hashlib.sha256(encoded).hexdigest(),
    )


async def upload(
    *, session: AsyncSession, driver_id: uuid.UUID, data: bytes, now: datetime
) -> DriverPhoto:
    """Replaces the driver's photo with this upload, pending a person's approval (a new photo
    is not shown to riders until approved, even if the previous one was)."""
    image = clean_image(data)
    photo = await session.get(DriverPhoto, driver_id, with_for_update=True)
    if photo is None:
        photo = DriverPhoto(driver_id=driver_id)
        session.add(photo)
    photo.image = image.data
    photo.content_type = image.content_type
    photo.width_px = image.width_px
    photo.height_px = image.height_px
    photo.sha256 = image.sha256
    photo.status = PhotoStatus.pending
    photo.uploaded_at = now
    photo.decided_at = None
    photo.decided_by = None
    photo.reason = None
    await session.commit()
    return photo


async def get(*, session: AsyncSession, driver_id: uuid.UUID) -> DriverPhoto:
    photo = await session.get(DriverPhoto, driver_id)
    if photo is None:
        raise NoPhoto(f"Driver {driver_id} has no photo")
    return photo


async def decide(
    *,
    session: AsyncSession,
    driver_id: uuid.UUID,
    sha256: str | None,
    approve: bool,
    reason: str | None,
    decided_by: str,
    now: datetime,
) -> DriverPhoto:
    """A person approves or rejects the driver's pending photo, recorded in the audit log.
    `sha256` names the photo the person looked at: a photo replaced meanwhile is not decided
    by a look at the one before (409)."""
    photo = await session.get(DriverPhoto, driver_id, with_for_update=True)
    if photo is None:
        await session.rollback()
        raise NoPhoto(f"Driver {driver_id} has no photo")
    current_sha256, current_status = photo.sha256, photo.status.value
    if sha256 is not None and current_sha256 != sha256:
        await session.rollback()
        raise PhotoAlreadyDecided(
            "The driver uploaded another photo since you looked: look again",
            sha256=current_sha256,
        )
    if current_status != PhotoStatus.pending.value:
        await session.rollback()
        raise PhotoAlreadyDecided(
            f"This photo is already {current_status}", photo_status=current_status
        )
    photo.status = PhotoStatus.approved if approve else PhotoStatus.rejected
    photo.decided_at = now
    photo.reason = None if approve else reason
    photo.decided_by = decided_by
    # The public log names neither the driver nor the operator (docs/audit.md): the decision's
    # own id, joined to the driver only in the drivers' table, by those who may read it.
    decision_id = uuid.uuid4()
    await audit.append(
        session=session,
        kind=AUDIT_KIND,
        subject=f"driver_photo_decision:{decision_id}",
        content={"decision_id": str(decision_id), "decision": photo.status.value},
        at=now,
    )
    await session.commit()
    return photo


async def pending(*, session: AsyncSession, limit: int) -> list[DriverPhoto]:
    """Photos waiting for a person, oldest upload first."""
    rows = await session.scalars(
        select(DriverPhoto)
        .where(DriverPhoto.status == PhotoStatus.pending)
        .order_by(DriverPhoto.uploaded_at, DriverPhoto.driver_id)
        .limit(limit)
    )
    return list(rows)


async def approved_sha256(*, session: AsyncSession, driver_id: uuid.UUID) -> str | None:
    """The digest of the driver's approved photo (None: no approved photo): a photo URL names
    it, so a replaced photo is a new URL and no cache shows the old one."""
    digest: str | None = await session.scalar(
        select(DriverPhoto.sha256).where(
            DriverPhoto.driver_id == driver_id, DriverPhoto.status == PhotoStatus.approved
        )
    )
    return digest


async def approved_photo(*, session: AsyncSession, driver_id: uuid.UUID) -> ApprovedPhoto | None:
    """The driver's approved photo, or None (none uploaded, pending or rejected). The caller
    decides who may see it: the rider of a current trip of this driver, a share link's viewer
    while the link lives, an operator."""
    row = (
        await session.execute(
            select(DriverPhoto.image, DriverPhoto.content_type, DriverPhoto.sha256).where(
                DriverPhoto.driver_id == driver_id, DriverPhoto.status == PhotoStatus.approved
            )
        )
    ).first()
    if row is None:
        return None
    return ApprovedPhoto(
        driver_id=driver_id, data=row.image, content_type=row.content_type, sha256=row.sha256
    )


async def export(*, session: AsyncSession, driver_id: uuid.UUID) -> dict[str, Any] | None:
    """The driver's photo in their personal-data export: its state and the image as kept."""
    photo = await session.get(DriverPhoto, driver_id)
    if photo is None:
        return None
    return {
        "status": photo.status.value,
        "uploaded_at": photo.uploaded_at,
        "decided_at": photo.decided_at,
        "reason": photo.reason,
        "content_type": photo.content_type,
        "width_px": photo.width_px,
        "height_px": photo.height_px,
        "sha256": photo.sha256,
        "image_base64": base64.b64encode(photo.image).decode("ascii"),
    }
