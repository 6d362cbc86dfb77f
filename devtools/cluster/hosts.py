"""The three test hosts: Linux network namespaces on a private bridge, with private addresses.

Only these addresses (and loopback) are ever targeted. Standard library only, as localdev."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

BRIDGE = "coopbr0"
SUBNET = "10.77.0.0/24"
# The bridge's own address, so that the tooling (in the machine's namespace) reaches the hosts.
BRIDGE_ADDRESS = "10.77.0.1"


@dataclass(frozen=True)
class Host:
    name: str  # h1, h2, h3
    address: str

    @property
    def namespace(self) -> str:
        return f"coop-{self.name}"

    @property
    def link(self) -> str:
        """Its cable: the bridge's end of its veth pair (cutting it isolates the host)."""
        return f"coop-{self.name}"


HOSTS = (Host("h1", "10.77.0.11"), Host("h2", "10.77.0.12"), Host("h3", "10.77.0.13"))
H1, H2, H3 = HOSTS
DATA_HOSTS = (H1, H2)  # PostgreSQL, Redis and the workers; H3 is etcd, Sentinel and HAProxy


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def namespaces() -> set[str]:
    listed = ip("netns", "list", check=False).stdout.split("\n")
    return {line.split()[0] for line in listed if line.strip()}


def link_exists(name: str) -> bool:
    return ip("link", "show", name, check=False).returncode == 0


def create() -> None:
    """The bridge and the three namespaces, each with its address; idempotent."""
    if not link_exists(BRIDGE):
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")
    present = namespaces()
    for host in HOSTS:
        if host.namespace not in present:
            ip("netns", "add", host.namespace)
        if not link_exists(host.link):
            ip(
                "link",
                "add",
                host.link,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                host.namespace,
            )
            ip("link", "set", host.link, "master", BRIDGE)
            inside = ("-n", host.namespace)
            ip(*inside, "addr", "add", f"{host.address}/24", "dev", "eth0")
            ip(*inside, "link", "set", "eth0", "up")
            ip(*inside, "link", "set", "lo", "up")
        ip("link", "set", host.link, "up")


def pids(host: Host) -> list[int]:
    """Every process in the host's namespace."""
    if host.namespace not in namespaces():
        return []
    out = ip("netns", "pids", host.namespace, check=False).stdout
    return [int(line) for line in out.split() if line.strip().isdigit()]


def remove() -> None:
    """The namespaces and the bridge (the veth pairs go with their namespace)."""
    present = namespaces()
    for host in HOSTS:
        if host.namespace in present:
            ip("netns", "delete", host.namespace, check=False)
        if link_exists(host.link):
            ip("link", "delete", host.link, check=False)
    if link_exists(BRIDGE):
        ip("link", "delete", BRIDGE, check=False)


def cut(host: Host) -> None:
    """The host loses its network entirely (its cable pulled)."""
    ip("link", "set", host.link, "down")


def reconnect(host: Host) -> None:
    ip("link", "set", host.link, "up")


def leftovers() -> list[str]:
    """What of the cluster's network is still there (empty after `remove`)."""
    found = [f"namespace {name}" for name in namespaces() if name.startswith("coop-h")]
    found += [f"link {name}" for name in [BRIDGE, *(h.link for h in HOSTS)] if link_exists(name)]
    return found
