"""Passkeys in Chromium with a virtual authenticator (the DevTools protocol's WebAuthn domain):
a person adds a passkey on /me, signs out, and signs in with it; a credential the service does
not know and a cloned one (its signature counter behind) are refused. At `localhost`, since a
passkey is bound to a host name and never to an address."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.async_api import BrowserContext, CDPSession, Page
from sqlalchemy import select

from coop.audit import AuditEntry
from coop.passkeys import Passkey
from tests.web.conftest import PHONE, SCREENSHOTS, Web

AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


class Device:
    """A browser context with its own virtual authenticator: one phone."""

    def __init__(self, web: Web, context: BrowserContext, page: Page, cdp: CDPSession) -> None:
        self.base = web.base_url.replace("127.0.0.1", "localhost")
        self.context, self.page, self.cdp = context, page, cdp
        self.errors: list[str] = []
        self.authenticator = ""
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    async def goto(self, path: str) -> None:
        await self.page.goto(self.base + path, wait_until="load")

    async def credentials(self) -> list[dict[str, Any]]:
        found = await self.cdp.send(
            "WebAuthn.getCredentials", {"authenticatorId": self.authenticator}
        )
        credentials: list[dict[str, Any]] = found["credentials"]
        return credentials

    async def status(self) -> str:
        await self.page.wait_for_function(
            "() => { const s = document.getElementById('passkey-status');"
            " return s && s.textContent && !s.textContent.includes('…'); }"
        )
        return str(await self.page.locator("#passkey-status").text_content())


@pytest_asyncio.fixture(loop_scope="session")
async def devices(web: Web) -> AsyncIterator[Any]:
    opened: list[Device] = []

    async def device(language: str = "en") -> Device:
        context = await web.browser.new_context(
            locale="fr-CA" if language == "fr" else "en-CA",
            extra_http_headers={"Accept-Language": f"{language}-CA,{language};q=0.9"},
            viewport=PHONE,  # type: ignore[arg-type]
        )
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        await cdp.send("WebAuthn.enable")
        made = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
        found = Device(web, context, page, cdp)
        found.authenticator = made["authenticatorId"]
        opened.append(found)
        return found

    yield device
    for found in opened:
        await found.context.close()
    for found in opened:
        assert not found.errors, found.errors


def _on_my_page(url: str) -> bool:
    return urlsplit(url).path == "/me"


async def _sign_in_with_token(device: Device, token: str) -> None:
    await device.goto("/signin?next=/me")
    await device.page.locator("#token").fill(token)
    await device.page.locator("form.card button[type=submit]").click()
    await device.page.wait_for_url(_on_my_page)


async def _add_passkey(device: Device, name: str) -> None:
    await device.goto("/me#passkeys")
    await device.page.locator("#passkey-name").fill(name)
    await device.page.locator("#passkey-add button[type=submit]").click()
    await device.page.locator("ul.passkeys li", has_text=name).wait_for()


async def _sign_in_with_passkey(device: Device) -> None:
    await device.goto("/signin?next=/me")
    await device.page.locator("#passkey-signin").click()


async def test_a_passkey_added_on_my_page_signs_me_in_and_a_clone_is_refused(
    web: Web, devices: Any
) -> None:
    phone: Device = await devices()
    await _sign_in_with_token(phone, web.accounts["amira"].token)
    await _add_passkey(phone, "Amira's phone")
    await phone.page.locator("#passkeys").screenshot(path=str(SCREENSHOTS / "me-passkeys-en.png"))
    [credential] = await phone.credentials()
    assert credential["isResidentCredential"] and credential["rpId"] == "localhost"

    # Signed out, then in again with nothing typed.
    await phone.page.locator("form[action='/signout'] button").first.click()
    await phone.page.wait_for_load_state("load")
    await _sign_in_with_passkey(phone)
    await phone.page.wait_for_url(_on_my_page)
    assert "Amira" in str(await phone.page.locator("h1, header").all_text_contents())
    async with web.app.state.sessionmaker() as session:
        stored = await session.scalar(select(Passkey))
        assert stored is not None and stored.last_used_at is not None
        counter = stored.sign_count
    assert counter >= 1

    # The same key copied into another authenticator, its counter behind: two devices hold one
    # key, so neither is trusted with it; refused and recorded.
    copy: Device = await devices()
    clone = {k: v for k, v in credential.items() if k != "signCount"} | {"signCount": 0}
    await copy.cdp.send(
        "WebAuthn.addCredential", {"authenticatorId": copy.authenticator, "credential": clone}
    )
    await _sign_in_with_passkey(copy)
    assert "not accepted" in await copy.status()
    assert copy.page.url.endswith("/signin?next=/me")
    async with web.app.state.sessionmaker() as session:
        kinds = list(await session.scalars(select(AuditEntry.kind)))
    assert "passkey_counter_refused" in kinds


async def test_a_passkey_the_service_does_not_know_is_refused(web: Web, devices: Any) -> None:
    stranger: Device = await devices()
    key = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    await stranger.cdp.send(
        "WebAuthn.addCredential",
        {
            "authenticatorId": stranger.authenticator,
            "credential": {
                "credentialId": base64.b64encode(os.urandom(16)).decode(),
                "isResidentCredential": True,
                "rpId": "localhost",
                "privateKey": base64.b64encode(pkcs8).decode(),
                "userHandle": base64.b64encode(os.urandom(16)).decode(),
                "signCount": 0,
            },
        },
    )
    await _sign_in_with_passkey(stranger)
    assert "not accepted" in await stranger.status()
    assert stranger.page.url.endswith("/signin?next=/me")  # still signed out


async def test_passkeys_in_french_at_phone_size(web: Web, devices: Any) -> None:
    phone: Device = await devices("fr")
    await _sign_in_with_token(phone, web.accounts["mei"].token)
    await _add_passkey(phone, "Téléphone de Mei")
    section = phone.page.locator("#passkeys")
    assert "Ajouter une clé d’accès" in str(await section.text_content())
    await section.screenshot(path=str(SCREENSHOTS / "me-passkeys-fr.png"))
    await phone.goto("/signin")
    await phone.page.screenshot(path=str(SCREENSHOTS / "signin-passkey-fr.png"), full_page=True)
