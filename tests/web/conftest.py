"""The pages in a real browser: Debian's Chromium driven by Playwright against a real server.

One server (uvicorn on a free port, the real PostgreSQL and Redis) and one browser serve every
test of the package; each test opens its own browser context (its own cookies). The tables are
emptied once, when the package is done. Every page visit goes through `Visit`, which fails the
test on a console error, an uncaught exception or any request leaving the service.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import AsyncClient
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from coop.db import utcnow
from coop.redis_client import create_redis
from coop.settings import Settings
from server.all_models import Base
from server.app import create_app
from tests.builders import Account, live_server, make_driver, make_rider

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core-4.11.0" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str:
    """Debian's Chromium (the project's set-up installs it; browsers cannot be downloaded)."""
    for candidate in (os.environ.get("COOP_CHROMIUM"), "/usr/bin/chromium", "chromium"):
        if candidate and (found := shutil.which(candidate)):
            return found
    pytest.fail("Chromium is not installed: run `make test`, which installs Debian's chromium")


class Clock:
    """The app's clock (`app.state.clock`): the system's, moved forward by a test."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def __call__(self) -> datetime:
        from datetime import timedelta

        return utcnow() + timedelta(seconds=self.offset_s)


@dataclass
class Web:
    app: FastAPI
    base_url: str
    http: AsyncClient
    browser: Browser
    clock: Clock
    accounts: dict[str, Account] = field(default_factory=dict)
    admin_token: str = ""

    def headers(self, name: str) -> dict[str, str]:
        return self.accounts[name].headers


async def _empty_everything(settings: Settings, engine: AsyncEngine) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    client = create_redis(settings.redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def web(base_settings: Settings, engine: AsyncEngine) -> AsyncIterator[Web]:
    await _empty_everything(base_settings, engine)
    app = create_app(base_settings)
    clock = Clock()
    app.state.clock = clock
    try:
        async with (
            live_server(app) as base_url,
            AsyncClient(base_url=base_url, timeout=30) as http,
            async_playwright() as playwright,
        ):
            browser = await playwright.chromium.launch(
                executable_path=chromium_path(),
                args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
            )
            admin = {"Authorization": f"Bearer {base_settings.admin_token}"}
            web = Web(app, base_url, http, browser, clock, admin_token=base_settings.admin_token)
            web.accounts["committee"] = await make_driver(
                http, admin, name="Nadia Tremblay", committee=True
            )
            web.accounts["reviewer"] = await make_driver(
                http, admin, name="Samuel Okafor", reviewer=True
            )
            for name in ("amira", "jf", "mei"):
                web.accounts[name] = await make_driver(http, admin, name=name.title())
            web.accounts["rider"] = await make_rider(http, "Lucie Gagnon")
            try:
                yield web
            finally:
                await browser.close()
    finally:
        await _empty_everything(base_settings, engine)


@dataclass
class Visit:
    """A browser context with the guards every page must pass."""

    web: Web
    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    async def goto(self, path: str, *, expect: int = 200) -> None:
        response = await self.page.goto(self.web.base_url + path, wait_until="load")
        assert response is not None
        assert response.status == expect, f"{path}: {response.status}"
        if expect != 200:  # the browser logs the refusal the test asked for; nothing else
            refused = f"the server responded with a status of {expect}"
            self.errors[:] = [e for e in self.errors if refused not in e]

    async def sign_in(self, token: str, *, next_path: str = "/") -> None:
        await self.goto(f"/signin?next={next_path}")
        await self.page.locator("#token").fill(token)
        await self.page.locator("form.card button[type=submit]").click()
        await self.page.wait_for_load_state("load")

    async def axe(self, label: str) -> None:
        """No serious or critical accessibility violation (axe-core, WCAG 2 A/AA rules)."""
        await self.page.evaluate(AXE.read_text())
        result: dict[str, Any] = await self.page.evaluate(
            """async () => await axe.run(document, {
                 runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                                 'best-practice']}})"""
        )
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(str(node["target"]) for node in v["nodes"][:3])
            for v in result["violations"]
            if v["impact"] in {"serious", "critical"}
        ]
        assert not bad, f"{label}: " + "; ".join(bad)

    async def shot(self, name: str, *, full_page: bool = True) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)

    def check_clean(self) -> None:
        assert not self.errors, f"console errors: {self.errors}"
        assert not self.outside, f"requests outside the service: {self.outside}"


@pytest_asyncio.fixture(loop_scope="session")
async def visit(web: Web) -> AsyncIterator[Callable[..., Any]]:
    contexts: list[Visit] = []

    async def open_visit(
        *, language: str = "en", viewport: dict[str, int] = DESKTOP, **options: Any
    ) -> Visit:
        context = await web.browser.new_context(
            locale="fr-CA" if language == "fr" else "en-CA",
            extra_http_headers={
                "Accept-Language": "fr-CA,fr;q=0.9" if language == "fr" else "en-CA,en;q=0.9"
            },
            viewport=viewport,  # type: ignore[arg-type]
            timezone_id="America/Toronto",
            **options,  # e.g. geolocation, permissions, has_touch for the apps
        )
        page = await context.new_page()
        current = Visit(web, context, page)
        own = web.base_url

        async def guard(route: Any) -> None:
            url = route.request.url
            if url.startswith(own) or url.startswith(("data:", "blob:", "about:")):
                await route.continue_()
            else:
                current.outside.append(url)
                await route.abort()

        await context.route("**/*", guard)
        page.on(
            "console",
            lambda message: (
                current.errors.append(message.text) if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: current.errors.append(str(error)))
        contexts.append(current)
        return current

    yield open_visit
    for current in contexts:
        await current.context.close()
    for current in contexts:
        current.check_clean()
