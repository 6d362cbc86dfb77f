"""The pages over plain HTTP, as a hostile visitor would try them: sign-in, sessions, CSRF,
roles, bad input, the language; and the French catalogue kept complete."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.pofile import read_po
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete

from coop.auth import AuthToken, hash_token
from server.web.i18n import Formatter, negotiate
from server.web.sessions import SESSION_COOKIE
from tests.builders import make_driver, make_rider
from tests.web.pages import csrf_of, sign_in

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "server" / "web" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"


async def test_sign_in_sets_a_safe_cookie_and_sign_out_ends_the_session(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers, name="Nadia")
    page = await client.get("/signin")
    response = await client.post(
        "/signin", data={"token": driver.token, "csrf": csrf_of(page.text), "next": "/me"}
    )
    cookie = next(
        header
        for header in response.headers.get_list("set-cookie")
        if header.startswith("coop_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert driver.token not in cookie  # the cookie holds a random session id, not the token
    me = await client.get("/me")
    assert me.status_code == 200 and "Nadia" in me.text
    signout = await client.post("/signout", data={"csrf": csrf_of(me.text)})
    assert signout.status_code == 303
    assert (await client.get("/me")).status_code == 401


async def test_the_cookie_is_secure_over_https(app: FastAPI, admin_headers: dict[str, str]) -> None:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="https://coop.test") as http:
        rider = await make_rider(http)
        page = await http.get("/signin")
        response = await http.post(
            "/signin", data={"token": rider.token, "csrf": csrf_of(page.text)}
        )
        cookies = response.headers.get_list("set-cookie")
        # Signing in sets the session cookie, and every cookie set over HTTPS is Secure.
        assert any(cookie.startswith(f"{SESSION_COOKIE}=") for cookie in cookies), cookies
        assert all("Secure" in cookie for cookie in cookies), cookies


async def test_a_bad_token_is_refused_in_the_visitors_language(client: AsyncClient) -> None:
    page = await client.get("/signin", headers={"Accept-Language": "fr-CA"})
    response = await client.post(
        "/signin",
        data={"token": "not-a-token", "csrf": csrf_of(page.text)},
        headers={"Accept-Language": "fr-CA"},
    )
    assert response.status_code == 401
    assert "Ce jeton n'est pas valide" in html.unescape(response.text)
    assert "coop_session" not in response.headers.get("set-cookie", "")


async def test_every_form_refuses_a_missing_or_foreign_csrf_value(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    committee = await make_driver(client, admin_headers, committee=True)
    await sign_in(client, committee.token)
    good = csrf_of((await client.get("/proposals")).text)
    proposal = "/proposals/00000000-0000-0000-0000-000000000000"
    for path in (
        "/signin",
        "/signout",
        "/proposals",
        f"{proposal}/ballot",
        f"{proposal}/close",
        "/me/appeals",
        "/me/reviews",
        "/review/00000000-0000-0000-0000-000000000000",
    ):
        for data in ({}, {"csrf": "x" * 43}):
            response = await client.post(path, data=data)
            assert response.status_code == 403, (path, data, response.status_code)
    # The right value from another site's page is refused too.
    response = await client.post(
        "/signout", data={"csrf": good}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert (await client.get("/me")).status_code == 200  # still signed in


async def test_a_csrf_value_planted_in_a_cookie_does_not_pass_for_a_signed_in_member(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    """The attack: a neighbouring site sets `coop_csrf` to a value it chose and posts a form
    carrying the same value. The value a signed-in member's forms need is their session's."""
    member = await make_driver(client, admin_headers, name="Nadia")
    await sign_in(client, member.token)
    own = csrf_of((await client.get("/me")).text)
    planted = "planted-by-a-neighbouring-site-0123456789"
    client.cookies.set("coop_csrf", planted)
    refused = await client.post("/signout", data={"csrf": planted})
    assert refused.status_code == 403
    assert (await client.get("/me")).status_code == 200  # still signed in
    # Another session's value does not pass either; the member's own page's does.
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as other:
        await sign_in(other, member.token)
        theirs = csrf_of((await other.get("/me")).text)
    assert theirs != own
    assert (await client.post("/signout", data={"csrf": theirs})).status_code == 403
    assert (await client.post("/signout", data={"csrf": own})).status_code == 303
    assert (await client.get("/me")).status_code == 401


async def test_a_revoked_token_ends_the_page_session(
    client: AsyncClient, admin_headers: dict[str, str], app: FastAPI
) -> None:
    rider = await make_rider(client)
    await sign_in(client, rider.token)
    assert (await client.get("/me")).status_code == 200
    async with app.state.sessionmaker() as session:
        await session.execute(
            delete(AuthToken).where(AuthToken.token_hash == hash_token(rider.token))
        )
        await session.commit()
    assert (await client.get("/me")).status_code == 401


async def test_pages_follow_the_api_roles(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    await sign_in(client, rider.token)
    me = await client.get("/me")
    assert (await client.get("/ops")).status_code == 403
    assert (await client.get("/ops/stream")).status_code == 403
    assert (await client.get("/review")).status_code == 403
    # A rider cannot open a vote or vote, exactly as over the API.
    response = await client.post("/proposals", data={"csrf": csrf_of(me.text), "title": "x"})
    assert response.status_code == 403
    assert (await client.get("/ops/stream")).headers["content-type"].startswith("text/html")


async def test_the_next_page_after_sign_in_stays_on_this_site(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    rider = await make_rider(client)
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        page = await client.get("/signin")  # signing in renews the CSRF value
        response = await client.post(
            "/signin", data={"token": rider.token, "csrf": csrf_of(page.text), "next": target}
        )
        assert response.headers["location"] == "/", target
    response = await client.get("/lang/fr", params={"next": "//evil.example"})
    assert response.headers["location"] == "/"


async def test_bad_input_on_pages_is_named_not_a_crash(client: AsyncClient) -> None:
    page = await client.get("/agreement", params={"km": "abc", "minutes": "-5"})
    assert page.status_code == 200
    assert "Enter a distance from 0 to 1,000 km." in page.text
    assert "Enter a duration from 0 to 1,440 minutes." in page.text
    assert (await client.get("/proposals/not-a-uuid")).status_code == 422
    missing = await client.get("/proposals/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and "There is no such proposal." in missing.text


async def test_language_from_accept_language_and_the_switch(client: AsyncClient) -> None:
    assert negotiate("fr-CA,fr;q=0.9,en;q=0.8", None) == "fr"
    assert negotiate("de-DE,en;q=0.5,fr;q=0.7", None) == "fr"
    assert negotiate("de", None) == "en"
    assert negotiate("fr;q=0", None) == "en"
    assert negotiate("fr-CA", "en") == "en"
    page = await client.get("/", headers={"Accept-Language": "fr-CA,fr;q=0.9"})
    assert '<html lang="fr">' in page.text and "Accueil" in page.text
    assert page.headers["content-language"] == "fr"
    switched = await client.get("/lang/en", params={"next": "/agreement"})
    assert switched.status_code == 303 and switched.headers["location"] == "/agreement"
    page = await client.get("/", headers={"Accept-Language": "fr-CA"})
    assert '<html lang="en">' in page.text


async def test_the_api_docs_are_served_without_any_outside_asset(client: AsyncClient) -> None:
    for path in ("/docs", "/redoc"):
        page = await client.get(path)
        assert page.status_code == 200
        assert not re.search(r'(src|href)="https?://', page.text), path
    schema = (await client.get("/openapi.json")).json()
    scheme = schema["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    asset = await client.get("/static/vendor/redoc-2.5.1/redoc.standalone.js")
    assert asset.status_code == 200 and "cdn.redoc.ly" not in asset.text


def test_the_french_catalogue_is_complete_and_current(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "N_",
            "-k",
            "translate:2",
            "--no-location",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as handle:
        wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle, locale="fr")
    have = {}
    for message in catalogue:
        if message.id:
            key = message.id if isinstance(message.id, str) else message.id[0]
            have[key] = message.string
    missing = sorted(wanted - have.keys())
    assert not missing, f"not in the French catalogue (run `make messages`): {missing}"
    untranslated = sorted(
        key
        for key, value in have.items()
        if key in wanted and (not value or (isinstance(value, tuple) and not all(value)))
    )
    assert not untranslated, f"no French translation: {untranslated}"


async def test_the_automated_decisions_page_reads_the_register_in_both_languages(
    client: AsyncClient,
) -> None:
    english = await client.get("/systems", headers={"Accept-Language": "en-CA"})
    assert english.status_code == 200
    text = html.unescape(english.text)
    assert "Automated decisions" in text and "never automated" in text
    assert "Which available driver is offered a waiting trip" in text
    french = await client.get("/systems", headers={"Accept-Language": "fr-CA"})
    text = html.unescape(french.text)
    assert "Décisions automatisées" in text and "jamais automatisé" in text
    assert "Quelle personne au volant disponible reçoit l'offre" in text
    assert "Which available driver" not in text
    # The values in force, as the API gives them.
    register = (await client.get("/v1/transparency/automated-decisions")).json()
    timing = next(d for d in register["decisions"] if d["key"] == "batch_timing")
    interval = next(p for p in timing["parameters"] if p["name"] == "dispatch.batch_interval_ms")
    # Written as French writes numbers ("2 000", a no-break space between thousands).
    shown = Formatter("fr", ZoneInfo("America/Toronto")).figure(interval["value"])
    assert f'<span class="value">{shown}</span>' in french.text


async def test_a_driver_sees_on_their_page_what_the_law_still_requires(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    bare = await make_driver(client, admin_headers, name="Bare", qualified=False)
    await sign_in(client, bare.token)
    page = html.unescape((await client.get("/me", headers={"Accept-Language": "fr-CA"})).text)
    assert "Ce que la loi exige de moi et de ma voiture" in page
    assert "Vérification des antécédents judiciaires" in page
    assert "votre adhésion est inchangée" in page
    fine = await make_driver(client, admin_headers, name="Fine")
    await sign_in(client, fine.token)
    page = html.unescape((await client.get("/me", headers={"Accept-Language": "en-CA"})).text)
    assert "What the law requires of me" not in page  # nothing missing, nothing lapsing soon


async def test_a_rider_asks_on_their_page_for_a_person_to_review_a_decision(
    client: AsyncClient,
) -> None:
    rider = await make_rider(client)
    await sign_in(client, rider.token)
    page = html.unescape((await client.get("/me", headers={"Accept-Language": "fr-CA"})).text)
    assert "Demander qu'une personne révise une décision automatisée" in page
    assert 'value="status_decisions"' not in page  # a person's decision: nothing to ask here
    csrf = csrf_of(page)
    empty = await client.post(
        "/me/reviews", data={"decision": "fare", "statement": "", "csrf": csrf}
    )
    assert empty.status_code == 200 and 'aria-invalid="true"' in empty.text
    asked = await client.post(
        "/me/reviews",
        data={"decision": "fare", "statement": "Le prix m'a surprise.", "csrf": csrf},
    )
    assert asked.status_code == 303 and asked.headers["location"] == "/me#reviews"
    mine = (await client.get("/v1/decision-reviews/mine", headers=rider.headers)).json()
    assert [(r["decision"], r["statement"]) for r in mine] == [("fare", "Le prix m'a surprise.")]
    again = html.unescape((await client.get("/me")).text)
    assert "My requests" in again
    unknown = await client.post(
        "/me/reviews", data={"decision": "horoscope", "statement": "?", "csrf": csrf}
    )
    assert unknown.status_code == 422
