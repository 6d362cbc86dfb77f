"""Who is calling, by network address: the client behind trusted proxies, and allow-lists.

The client address is the peer of the connection, unless that peer is one of
`COOP_TRUSTED_PROXIES`: then it is the last address in `X-Forwarded-For` that is not itself a
trusted proxy (uvicorn's `ProxyHeadersMiddleware` does this, and the same for
`X-Forwarded-Proto`). A client can write anything in `X-Forwarded-For`; only the part a trusted
proxy appended is believed, so nobody picks their own address to dodge a per-address limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_host(scope: Any) -> str:
    """The client's address as the app sees it (after the trusted-proxy rewrite)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class AddressAllowList:
    """A set of networks, e.g. `COOP_METRICS_ALLOW`; addresses that do not parse are outside."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks: list[Network] = [
            ipaddress.ip_network(network, strict=False) for network in networks
        ]

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str):
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)
