"""Pages and public routes under the rate limits (docs/security.md, "Round two"): a member's
pages count with their API requests, the committee's "Check" included, and requests without an
account count per client address, on the API and on the pages."""

from __future__ import annotations

from coop.settings import Settings
from tests.builders import assert_rate_limited, serve
from tests.web.pages import csrf_of, sign_in


def assert_page_rate_limited(response: object) -> None:
    assert response.status_code == 429, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("text/html")  # type: ignore[attr-defined]
    assert 1 <= int(response.headers["retry-after"]) <= 3600  # type: ignore[attr-defined]


async def test_pages_count_with_the_accounts_api_requests(settings: Settings) -> None:
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    async with serve(settings, api_limit="4/minute") as worker:
        created = await worker.http.post("/v1/riders", json={"name": "Pages"}, headers=admin)
        rider = {"Authorization": f"Bearer {created.json()['token']}"}
        await sign_in(worker.http, created.json()["token"])  # the sign-in is anonymous
        for _ in range(2):
            assert (await worker.http.get("/me")).status_code == 200
        for _ in range(2):
            assert (await worker.http.get("/v1/riders/me", headers=rider)).status_code == 200
        # The API said 429: the pages say it too, and the other way round.
        assert_rate_limited(await worker.http.get("/v1/riders/me", headers=rider))
        assert_page_rate_limited(await worker.http.get("/me"))
        assert_page_rate_limited(await worker.http.get("/agreement"))


async def test_the_committees_check_counts_against_its_account(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    from tests.builders import make_driver

    async with serve(settings, api_limit="4/minute") as worker:
        member = await make_driver(worker.http, admin_headers, committee=True)
        await sign_in(worker.http, member.token)
        csrf = csrf_of((await worker.http.get("/proposals")).text)
        check = {"csrf": csrf, "action": "preview", "title": "Check", "voting_closes_at": ""}
        # Each "Check" re-prices 30 days of trips: it is a request like any other.
        for _ in range(3):
            assert (await worker.http.post("/proposals", data=check)).status_code == 200
        assert_page_rate_limited(await worker.http.post("/proposals", data=check))
        assert_rate_limited(await worker.http.get("/v1/drivers/me", headers=member.headers))


async def test_requests_without_an_account_are_limited_per_address(settings: Settings) -> None:
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    proxied = {"X-Forwarded-For": "203.0.113.20"}
    async with (
        serve(settings, anonymous_limit="4/minute", trusted_proxies=["127.0.0.1"]) as one,
        serve(settings, anonymous_limit="4/minute", trusted_proxies=["127.0.0.1"]) as two,
    ):
        created = await one.http.post("/v1/riders", json={"name": "Known"}, headers=admin)
        rider = {"Authorization": f"Bearer {created.json()['token']}", **proxied}
        assert (await one.http.get("/v1/ratings/tags", headers=proxied)).status_code == 200
        assert (await two.http.get("/v1/audit", headers=proxied)).status_code == 200
        assert (await one.http.get("/agreement", headers=proxied)).status_code == 200
        assert (await two.http.get("/signin", headers=proxied)).status_code == 200
        # The fifth, on any worker, API or page, is refused.
        assert_rate_limited(await one.http.get("/v1/ratings/tags", headers=proxied))
        assert_page_rate_limited(await two.http.get("/transparency", headers=proxied))
        # A made-up token lifts nothing; a sign-up from the address is counted too.
        junk = {"Authorization": "Bearer made-up", **proxied}
        assert_rate_limited(await one.http.get("/v1/ratings/tags", headers=junk))
        assert_rate_limited(await two.http.post("/v1/riders", json={"name": "x"}, headers=proxied))
        # A member's token counts with its account, the admin is exempt, another address is
        # someone else, and the probes are never counted.
        assert (await one.http.get("/v1/ratings/tags", headers=rider)).status_code == 200
        assert (await two.http.get("/v1/audit", headers={**admin, **proxied})).status_code == 200
        other = {"X-Forwarded-For": "203.0.113.21"}
        assert (await one.http.get("/v1/ratings/tags", headers=other)).status_code == 200
        assert (await two.http.get("/healthz", headers=proxied)).status_code == 200
