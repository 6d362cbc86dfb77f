"""A driver's photo on their page (/me) in Chromium at phone size, in English and French: the
upload form, a refused file, the photo pending, then approved by an operator."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.async_api import expect

from tests.web.conftest import PHONE, Visit, Web


def _portrait(path: Path) -> Path:
    image = Image.new("RGB", (480, 600), (226, 232, 240))
    for x in range(140, 340):  # a face-coloured oval, roughly
        for y in range(120, 380):
            if ((x - 240) / 100) ** 2 + ((y - 250) / 130) ** 2 <= 1:
                image.putpixel((x, y), (198, 140, 105))
    out = io.BytesIO()
    image.save(out, format="JPEG")
    path.write_bytes(out.getvalue())
    return path


async def test_a_driver_uploads_a_photo_that_an_operator_approves(
    web: Web, visit: Callable[..., Any], tmp_path: Path
) -> None:
    driver = web.accounts["mei"]
    page: Visit = await visit(viewport=PHONE)
    await page.sign_in(driver.token, next_path="/me")
    card = page.page.locator("#photo")
    await expect(card.locator("#photo-status")).to_contain_text("No photo yet")

    # A file that is not a photo is refused in the card, and nothing is kept.
    not_a_photo = tmp_path / "notes.png"
    not_a_photo.write_text("hello")
    await card.locator("#photo-file").set_input_files(str(not_a_photo))
    await card.get_by_role("button", name="Upload my photo").click()
    await page.page.wait_for_load_state("load")
    await expect(page.page.locator("#photo-error")).to_contain_text("not a JPEG or PNG photo")
    await expect(card.locator("#photo-status")).to_contain_text("No photo yet")

    await card.locator("#photo-file").set_input_files(str(_portrait(tmp_path / "me.jpg")))
    await card.get_by_role("button", name="Upload my photo").click()
    await page.page.wait_for_load_state("load")
    await expect(card.locator("#photo-status")).to_have_text("Pending")
    await expect(card.locator("img.member-photo")).to_be_visible()
    loaded = await card.locator("img.member-photo").evaluate("img => img.naturalWidth")
    assert loaded == 480
    await expect(card.get_by_role("button", name="Replace my photo")).to_be_visible()
    await card.scroll_into_view_if_needed()
    await page.axe("/me (driver, photo pending)")
    await page.shot("me-photo-pending-en", full_page=False)

    mine = (await web.http.get("/v1/drivers/me/photo", headers=driver.headers)).json()
    approved = await web.http.post(
        f"/v1/drivers/{driver.id}/photo/approve",
        json={"sha256": mine["sha256"]},
        headers={"Authorization": f"Bearer {web.admin_token}"},
    )
    assert approved.status_code == 200, approved.text

    french: Visit = await visit(language="fr", viewport=PHONE)
    await french.sign_in(driver.token, next_path="/me")
    card = french.page.locator("#photo")
    await expect(card.locator("h2")).to_have_text("Ma photo")
    await expect(card.locator("#photo-status")).to_have_text("Approuvée")
    await expect(card).to_contain_text("Les personnes passagères de vos courses la voient")
    await expect(card.get_by_role("button", name="Remplacer ma photo")).to_be_visible()
    await card.scroll_into_view_if_needed()
    await french.axe("/me (driver, photo approved, fr)")
    await french.shot("me-photo-approved-fr", full_page=False)
