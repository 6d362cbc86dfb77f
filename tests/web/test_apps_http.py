"""The apps' shells over plain HTTP (docs/apps.md): both languages, the page's policy, the
manifest that makes them installable, and a service worker that keeps the shell and nothing
else. The shells carry no one's data, so a visitor who guesses their address learns nothing."""

from __future__ import annotations

import json
import re

import pytest
from httpx import AsyncClient

from server.web.pages.apps import assets
from tests.builders import make_rider
from tests.web.pages import EN, FR


@pytest.mark.parametrize("which", ["ride", "drive"])
async def test_the_shell_comes_in_each_language_with_its_policy(
    client: AsyncClient, which: str
) -> None:
    for headers, lang, words in ((EN, "en", "Sign in"), (FR, "fr", "Se connecter")):
        page = await client.get(f"/{which}", headers=headers)
        assert page.status_code == 200
        assert f'<html lang="{lang}">' in page.text
        assert words in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["content-language"] == lang
        # Every figure comes from the API: the shell holds words and the map's setting only.
        config = json.loads(
            re.search(r'id="app-config">(.*?)</script>', page.text, re.S).group(1)  # type: ignore[union-attr]
        )
        assert config["app"] == which and config["scope"] == f"/{which}"
        assert config["area"]["type"] in {"Polygon", "MultiPolygon"}
    # The language the visitor chose wins over the browser's.
    chosen = await client.get(f"/{which}", headers={**EN, "Cookie": "coop_lang=fr"})
    assert '<html lang="fr">' in chosen.text


async def test_a_signed_in_token_changes_nothing_in_the_shell(client: AsyncClient) -> None:
    """The shell is the same for everyone: a bearer token or another's cookie adds nothing."""
    rider = await make_rider(client, "Lucie Gagnon")
    anonymous = await client.get("/ride", headers=EN)
    with_token = await client.get("/ride", headers={**EN, **rider.headers})
    strip = re.compile(r'name="csrf" value="[^"]*"')
    assert strip.sub("", anonymous.text) == strip.sub("", with_token.text)
    assert "Lucie" not in with_token.text and rider.token not in with_token.text


@pytest.mark.parametrize(
    ("which", "short"), [("ride", "Coop transport"), ("drive", "Conduite co-op")]
)
async def test_the_manifest_makes_the_app_installable(
    client: AsyncClient, which: str, short: str
) -> None:
    response = await client.get(f"/{which}/manifest.webmanifest", headers=FR)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = response.json()
    assert manifest["short_name"] == short and manifest["lang"] == "fr"
    assert manifest["start_url"] == f"/{which}" and manifest["scope"] == f"/{which}"
    assert manifest["display"] == "standalone"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        fetched = await client.get(icon["src"])
        assert fetched.status_code == 200 and fetched.content[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("which", ["ride", "drive"])
async def test_the_service_worker_keeps_the_shell_and_never_the_api(
    client: AsyncClient, which: str
) -> None:
    response = await client.get(f"/{which}-sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    # Served from the root so that its scope can be the app's address.
    assert response.headers["service-worker-allowed"] == f"/{which}"
    shell = json.loads(re.search(r"const SHELL = (\[.*?\]);", response.text).group(1))  # type: ignore[union-attr]
    assert shell[0] == f"/{which}" and shell[1:] == list(assets(which))  # type: ignore[arg-type]
    assert not [path for path in shell if path.startswith("/v1")]
    for path in shell[1:]:
        assert (await client.get(path)).status_code == 200, path
    other = await client.get("/ride-sw.js" if which == "drive" else "/drive-sw.js")
    version = re.compile(r'const VERSION = "([0-9a-f]+)"')
    # Each app has its own cache, named by the digest of its own files.
    ours, theirs = version.search(response.text), version.search(other.text)
    assert ours and theirs and ours.group(1) != theirs.group(1)
