"""A driver's photo (drivers/photos.py) over the real protocol: uploaded by the driver, re-encoded
without metadata, approved or rejected by an operator (audited), and shown only to the rider of
a current trip of that driver and to operators."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import uuid
import zlib
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coop.audit import AuditEntry
from drivers import photos
from tests.builders import Account, assigned_trip, make_driver, make_rider

SECRET_MAKER = "SpyCam-4-rue-Secrete"


def jpeg(width: int = 600, height: int = 400, *, exif: bool = True) -> bytes:
    image = Image.new("RGB", (width, height), (200, 120, 40))
    out = io.BytesIO()
    if exif:
        tags = Image.Exif()
        tags[0x010F] = SECRET_MAKER  # Make
        tags[0x010E] = "taken at home"  # ImageDescription
        tags[0x0112] = 6  # Orientation: the camera was turned; shown rotated 90°
        image.save(out, format="JPEG", exif=tags.tobytes(), comment=b"a comment")
    else:
        image.save(out, format="JPEG")
    return out.getvalue()


def png(width: int = 400, height: int = 400) -> bytes:
    image = Image.new("RGBA", (width, height), (0, 0, 255, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge canvas (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


async def _upload(client: AsyncClient, driver: Account, data: bytes, kind: str) -> Response:
    return await client.put(
        "/v1/drivers/me/photo", content=data, headers={**driver.headers, "Content-Type": kind}
    )


def _problem(answer: Response, status: int, type_: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["type"] == type_, body
    return body


async def test_an_approved_photo_reaches_the_trips_rider_without_its_metadata(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    driver = await make_driver(client, admin_headers, name="Dana Q. Driver")
    rider = await make_rider(client)
    uploaded = await _upload(client, driver, jpeg(), "image/jpeg")
    assert uploaded.status_code == 200, uploaded.text
    state = uploaded.json()
    assert state["status"] == "pending"
    # The camera's orientation applied: 600×400 turned is 400×600.
    assert (state["width_px"], state["height_px"]) == (400, 600)

    trip = await assigned_trip(app, client, rider, driver)
    seen = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert seen["driver"]["photo_url"] is None  # pending: not yet
    assert seen["driver"]["first_name"] == "Dana"
    assert seen["driver"]["vehicle"]["plate"] == "FXK 123"
    assert seen["driver"]["vehicle"]["make"] == "Toyota"
    assert seen["driver"]["vehicle"]["model"] == "Prius"
    assert seen["driver"]["vehicle"]["colour"] == "Gris"

    pending = await client.get("/v1/drivers/photos/pending", headers=admin_headers)
    assert [p["driver_id"] for p in pending.json()] == [str(driver.id)]
    looked = await client.get(f"/v1/drivers/{driver.id}/photo", headers=admin_headers)
    assert looked.status_code == 200 and looked.headers["content-type"] == "image/jpeg"
    approved = await client.post(
        f"/v1/drivers/{driver.id}/photo/approve",
        json={"sha256": state["sha256"]},
        headers=admin_headers,
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"

    seen = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    photo_url = seen["driver"]["photo_url"]
    assert photo_url.startswith(f"/v1/trips/{trip['id']}/driver/photo")
    image = await client.get(photo_url, headers=rider.headers)
    assert image.status_code == 200, image.text
    assert image.headers["content-type"] == "image/jpeg"
    assert "private" in image.headers["cache-control"]
    assert SECRET_MAKER.encode() not in image.content
    assert b"taken at home" not in image.content and b"a comment" not in image.content
    served = Image.open(io.BytesIO(image.content))
    assert served.format == "JPEG" and served.size == (400, 600)
    assert not served.getexif() and "comment" not in served.info
    # The driver's own view names the car but never a photo path.
    drivers = (await client.get(f"/v1/trips/{trip['id']}", headers=driver.headers)).json()
    assert drivers["driver"]["photo_url"] is None

    # The audit log records the decision, naming neither the driver nor the operator.
    entries = (
        await session.scalars(select(AuditEntry).where(AuditEntry.kind == photos.AUDIT_KIND))
    ).all()
    assert [entry.content["decision"] for entry in entries] == ["approved"]
    assert str(driver.id) not in repr([(e.subject, e.content) for e in entries])


async def test_the_photo_is_shown_to_no_one_else(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    rider = await make_rider(client)
    stranger = await make_rider(client, "Sam Stranger")
    other_driver = await make_driver(client, admin_headers, name="Otto Other")
    await _upload(client, driver, jpeg(exif=False), "image/jpeg")
    approved = await client.post(
        f"/v1/drivers/{driver.id}/photo/approve", json={}, headers=admin_headers
    )
    assert approved.status_code == 200, approved.text
    trip = await assigned_trip(app, client, rider, driver)
    url = f"/v1/trips/{trip['id']}/driver/photo"
    assert (await client.get(url, headers=rider.headers)).status_code == 200
    # Someone who guessed or was given the link, the driver, another driver: refused.
    _problem(await client.get(url, headers=stranger.headers), 403, "not_your_trip")
    _problem(await client.get(url, headers=driver.headers), 403, "not_your_trip")
    _problem(await client.get(url, headers=other_driver.headers), 403, "not_your_trip")
    _problem(await client.get(url), 401, "unauthorized")
    _problem(
        await client.get(f"/v1/trips/{uuid.uuid4()}/driver/photo", headers=rider.headers),
        404,
        "trip_not_found",
    )
    # By the driver's id: operators only.
    _problem(
        await client.get(f"/v1/drivers/{driver.id}/photo", headers=rider.headers), 403, "forbidden"
    )
    _problem(
        await client.get(f"/v1/drivers/{driver.id}/photo", headers=other_driver.headers),
        403,
        "forbidden",
    )
    # The trip over, the rider's right to the photo ends with it.
    cancelled = await client.post(f"/v1/trips/{trip['id']}/cancel", headers=rider.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["driver"]["photo_url"] is None
    _problem(await client.get(url, headers=rider.headers), 404, "no_driver_photo")


@pytest.mark.parametrize(
    ("data", "kind", "status", "type_"),
    [
        (b"", "image/jpeg", 422, "photo_not_an_image"),
        (b"hello, I am a text file", "image/jpeg", 422, "photo_not_an_image"),
        (b"%PDF-1.7\n" + b"0" * 500, "image/png", 422, "photo_not_an_image"),
        (None, "image/gif", 422, "photo_not_an_image"),  # a GIF: not accepted
        (jpeg(600, 400)[:700], "image/jpeg", 422, "photo_not_an_image"),  # truncated
        (jpeg(120, 400, exif=False), "image/jpeg", 422, "photo_dimensions"),
        (png_declaring(30_000, 30_000), "image/png", 422, "photo_dimensions"),
        (png_declaring(9_000, 1_000), "image/png", 422, "photo_dimensions"),
        (
            b"\xff\xd8" + b"\x00" * (photos.PHOTO_MAX_BYTES + 1),
            "image/jpeg",
            413,
            "payload_too_large",
        ),
    ],
)
async def test_a_bad_file_is_refused_with_a_clear_type_and_nothing_is_kept(
    client: AsyncClient,
    admin_headers: dict[str, str],
    data: bytes | None,
    kind: str,
    status: int,
    type_: str,
) -> None:
    if data is None:
        out = io.BytesIO()
        Image.new("RGB", (400, 400)).save(out, format="GIF")
        data = out.getvalue()
    driver = await make_driver(client, admin_headers)
    _problem(await _upload(client, driver, data, kind), status, type_)
    _problem(await client.get("/v1/drivers/me/photo", headers=driver.headers), 404, "no_photo")


async def test_a_png_with_transparency_is_kept_as_a_jpeg_on_white(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    uploaded = await _upload(client, driver, png(), "image/png")
    assert uploaded.status_code == 200, uploaded.text
    mine = await client.get("/v1/drivers/me/photo/image", headers=driver.headers)
    kept = Image.open(io.BytesIO(mine.content))
    assert kept.format == "JPEG" and kept.mode == "RGB"
    red, green, blue = kept.getpixel((200, 200))  # type: ignore[misc]
    assert min(red, green, blue) > 240  # transparent became white, not black


async def test_a_large_photo_is_scaled_down(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    uploaded = await _upload(client, driver, jpeg(3000, 2000, exif=False), "image/jpeg")
    assert uploaded.status_code == 200, uploaded.text
    assert (uploaded.json()["width_px"], uploaded.json()["height_px"]) == (
        photos.STORED_MAX_SIDE_PX,
        photos.STORED_MAX_SIDE_PX * 2 // 3,
    )


async def test_a_rejection_is_explained_and_a_new_upload_waits_again(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    rider = await make_rider(client)
    first = (await _upload(client, driver, jpeg(exif=False), "image/jpeg")).json()
    rejected = await client.post(
        f"/v1/drivers/{driver.id}/photo/reject",
        json={"reason": "Your face is not visible", "sha256": first["sha256"]},
        headers=admin_headers,
    )
    assert rejected.status_code == 200, rejected.text
    mine = (await client.get("/v1/drivers/me/photo", headers=driver.headers)).json()
    assert (mine["status"], mine["reason"]) == ("rejected", "Your face is not visible")
    _problem(
        await client.post(f"/v1/drivers/{driver.id}/photo/approve", json={}, headers=admin_headers),
        409,
        "photo_already_decided",
    )
    _problem(
        await client.post(
            f"/v1/drivers/{driver.id}/photo/reject", json={"reason": ""}, headers=admin_headers
        ),
        422,
        "validation_error",
    )

    second = (await _upload(client, driver, jpeg(500, 500, exif=False), "image/jpeg")).json()
    assert (second["status"], second["reason"]) == ("pending", None)
    # An approval of what the operator saw before the new upload is refused: look again.
    _problem(
        await client.post(
            f"/v1/drivers/{driver.id}/photo/approve",
            json={"sha256": first["sha256"]},
            headers=admin_headers,
        ),
        409,
        "photo_already_decided",
    )
    assert (
        await client.post(
            f"/v1/drivers/{driver.id}/photo/approve",
            json={"sha256": second["sha256"]},
            headers=admin_headers,
        )
    ).status_code == 200
    trip = await assigned_trip(app, client, rider, driver)
    seen = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert seen["driver"]["photo_url"] is not None
    # A replaced photo is pending again: riders no longer see any until a person looks.
    await _upload(client, driver, jpeg(exif=False), "image/jpeg")
    seen = (await client.get(f"/v1/trips/{trip['id']}", headers=rider.headers)).json()
    assert seen["driver"]["photo_url"] is None
    _problem(
        await client.get(f"/v1/trips/{trip['id']}/driver/photo", headers=rider.headers),
        404,
        "no_driver_photo",
    )


async def test_two_operators_deciding_one_photo_at_once_make_one_decision(
    client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    driver = await make_driver(client, admin_headers)
    await _upload(client, driver, jpeg(exif=False), "image/jpeg")
    approve, reject = await asyncio.gather(
        client.post(f"/v1/drivers/{driver.id}/photo/approve", json={}, headers=admin_headers),
        client.post(
            f"/v1/drivers/{driver.id}/photo/reject",
            json={"reason": "blurry"},
            headers=admin_headers,
        ),
    )
    assert sorted((approve.status_code, reject.status_code)) == [200, 409]
    entries = (
        await session.scalars(select(AuditEntry).where(AuditEntry.kind == photos.AUDIT_KIND))
    ).all()
    assert len(entries) == 1


async def test_only_drivers_upload_and_only_operators_decide(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    rider = await make_rider(client)
    _problem(await _upload(client, rider, jpeg(), "image/jpeg"), 403, "forbidden")
    await _upload(client, driver, jpeg(), "image/jpeg")
    for who in (driver, rider):
        _problem(
            await client.post(
                f"/v1/drivers/{driver.id}/photo/approve", json={}, headers=who.headers
            ),
            403,
            "forbidden",
        )
        _problem(
            await client.get("/v1/drivers/photos/pending", headers=who.headers), 403, "forbidden"
        )
    _problem(
        await client.post(
            f"/v1/drivers/{uuid.uuid4()}/photo/approve", json={}, headers=admin_headers
        ),
        404,
        "no_photo",
    )


async def test_the_photo_is_in_the_drivers_export_as_kept(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    await _upload(client, driver, jpeg(), "image/jpeg")
    export = (await client.get("/v1/drivers/me/export", headers=driver.headers)).json()
    kept = (await client.get("/v1/drivers/me/photo/image", headers=driver.headers)).content
    assert export["photo"]["status"] == "pending"
    assert base64.b64decode(export["photo"]["image_base64"]) == kept
