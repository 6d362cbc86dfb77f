"""The demo's people: accounts a person signs in with to try the pages (`make demo` prints them).

Created over the real API with the admin token, like any co-op would open them. The drivers here
are members (not simulated): they are on the roll of every vote, so one person signing in as the
committee member and one or two of the members can put new terms to the vote and ratify them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from devtools.processes import ServiceError
from server.simulator import registration


@dataclass(frozen=True)
class DemoAccount:
    role: str
    name: str
    token: str


MEMBERS = ("Amira Haddad", "Jean-François Roy", "Mei Chen")


def create_demo_accounts(
    base_url: str, admin_token: str, *, timeout_s: float = 10.0
) -> list[DemoAccount]:
    """A committee member, a reviewer, a rider and a few driver-members, with their tokens."""
    try:
        return _create(base_url, admin_token, timeout_s)
    except httpx.HTTPError as exc:
        raise ServiceError(f"could not open the demo accounts: {exc}") from exc


def _create(base_url: str, admin_token: str, timeout_s: float) -> list[DemoAccount]:
    run = secrets.token_hex(3)
    accounts = [DemoAccount("admin", "the co-op's operator", admin_token)]
    with httpx.Client(base_url=base_url, timeout=timeout_s) as http:
        headers = {"Authorization": f"Bearer {admin_token}"}

        def driver(role: str, name: str, number: int, **flags: bool) -> None:
            response = http.post(
                "/v1/drivers",
                headers=headers,
                json=registration.driver_body(
                    number,
                    datetime.now(UTC).date(),
                    name=name,
                    member_number=f"DEMO-{run}-{number}",
                    plate=f"DEMO {number:03d}",
                    **flags,
                ),
            )
            response.raise_for_status()
            accounts.append(DemoAccount(role, name, response.json()["token"]))

        driver("committee member", "Nadia Tremblay", 1, committee=True)
        driver("reviewer", "Samuel Okafor", 2, reviewer=True)
        for number, name in enumerate(MEMBERS, start=3):
            driver("driver-member", name, number)
        response = http.post("/v1/riders", json={"name": "Lucie Gagnon"})
        response.raise_for_status()
        accounts.append(DemoAccount("rider", "Lucie Gagnon", response.json()["token"]))
    return accounts
