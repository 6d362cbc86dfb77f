"""Opening rider accounts from many addresses (docs/security.md, "Round two"): an IPv6 client
counts by its /64, and the whole service has a ceiling of new accounts a minute."""

from __future__ import annotations

from coop.ratelimit import address_key
from coop.settings import Settings
from tests.builders import assert_rate_limited, serve


def test_an_address_key_is_the_ipv6_64_or_the_ipv4_address() -> None:
    assert address_key("2001:db8:7:1::1") == address_key("2001:db8:7:1:ffff:ffff:ffff:fffe")
    assert address_key("2001:db8:7:1::1") == "2001:db8:7:1::/64"
    assert address_key("2001:db8:7:2::1") != address_key("2001:db8:7:1::1")
    assert address_key("::ffff:203.0.113.5") == address_key("203.0.113.5") == "203.0.113.5"
    assert address_key("unknown") == "unknown"


async def test_signup_counts_an_ipv6_client_by_its_64(settings: Settings) -> None:
    async with serve(settings, signup_limit="2/hour", trusted_proxies=["127.0.0.1"]) as proxy:
        # One customer's /64 holds 2**64 addresses: rotating through them changes nothing.
        for host in ("2001:db8:7:1::1", "2001:db8:7:1:abcd::2"):
            response = await proxy.http.post(
                "/v1/riders", json={"name": "Rotating"}, headers={"X-Forwarded-For": host}
            )
            assert response.status_code == 201, response.text
        assert_rate_limited(
            await proxy.http.post(
                "/v1/riders",
                json={"name": "Rotating"},
                headers={"X-Forwarded-For": "2001:db8:7:1:ffff:ffff:ffff:fffe"},
            )
        )
        # The next /64 is someone else.
        response = await proxy.http.post(
            "/v1/riders", json={"name": "Neighbour"}, headers={"X-Forwarded-For": "2001:db8:7:2::1"}
        )
        assert response.status_code == 201, response.text


async def test_new_accounts_have_a_ceiling_whatever_the_addresses(settings: Settings) -> None:
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    async with (
        serve(settings, signup_global_limit="3/minute", trusted_proxies=["127.0.0.1"]) as one,
        serve(settings, signup_global_limit="3/minute", trusted_proxies=["127.0.0.1"]) as two,
    ):
        for n, worker in enumerate((one, two, one)):
            response = await worker.http.post(
                "/v1/riders", json={"name": "Farm"}, headers={"X-Forwarded-For": f"2001:db8:{n}::1"}
            )
            assert response.status_code == 201, response.text
        refused = await two.http.post(
            "/v1/riders", json={"name": "Farm"}, headers={"X-Forwarded-For": "198.51.100.9"}
        )
        assert_rate_limited(refused)
        assert "new accounts per minute" in refused.json()["detail"]
        # The admin bulk-loads regardless.
        response = await one.http.post("/v1/riders", json={"name": "Bulk"}, headers=admin)
        assert response.status_code == 201
