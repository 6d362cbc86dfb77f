"""The three test hosts of `make cluster` (network namespaces, root only): PostgreSQL's primary
fails over to its synchronous replica while a trip is in flight, and the trip goes on through
the same address; one matcher leads before and after (docs/deployment.md)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.cluster import components, hosts
from devtools.cluster.hosts import DATA_HOSTS, H3
from server.simulator import registration
from tests.builders import DOWNTOWN, PLATEAU, Account, consented, go_online, local_today, socket
from tests.polling import until

PROXY = f"http://{H3.address}:{components.HTTP_PORT}"

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None,
        reason="the test hosts are network namespaces: root and iproute2 needed",
    ),
]


def _cluster(data_dir: Path, command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
    env["COOP_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "devtools.cluster", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    if hosts.namespaces() & {h.namespace for h in hosts.HOSTS}:
        pytest.skip("a cluster is running already (`make cluster-stop` first)")
    # Not pytest's temporary folder (closed to others): PostgreSQL runs as `postgres`.
    data_dir = Path(tempfile.mkdtemp(prefix="coop-cluster-test-", dir="/var/tmp"))
    data_dir.chmod(0o755)
    monkeypatch.setenv("COOP_DATA_DIR", str(data_dir))  # where components finds the pid files
    try:
        started = _cluster(data_dir, "up")
        assert started.returncode == 0, started.stdout + started.stderr
        yield data_dir
    finally:
        stopped = _cluster(data_dir, "down")
        # `down` checks that no namespace, link or process of the cluster is left.
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert not hosts.leftovers()
        shutil.rmtree(data_dir, ignore_errors=True)


async def _leaders(http: httpx.AsyncClient) -> int:
    count = 0
    for host in DATA_HOSTS:
        metrics = await http.get(f"http://{host.address}:{components.WORKER_PORT}/metrics")
        for line in metrics.text.splitlines():
            if line.startswith("coop_matcher_leading ") and float(line.split()[1]) >= 1:
                count += 1
    return count


async def _retrying(call: object, timeout_s: float = 60.0) -> httpx.Response:
    """As an app does: a 502/503 or no answer during the failover is tried again."""
    assert callable(call)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            response: httpx.Response = await call()
            if response.status_code not in (502, 503, 504):
                return response
        except httpx.TransportError:
            pass
        assert asyncio.get_running_loop().time() < deadline, "the service did not come back"
        await asyncio.sleep(0.5)


@pytest.mark.timeout(600)
async def test_a_trip_in_flight_survives_the_primary_failing_over(cluster: Path) -> None:
    admin = json.loads((cluster / "cluster" / "secrets.json").read_text())["admin_token"]
    async with httpx.AsyncClient(base_url=PROXY, timeout=10) as http:
        rider = (await http.post("/v1/riders", json={"name": "Rosa Rider"})).json()
        created = await http.post(
            "/v1/drivers",
            headers={"Authorization": f"Bearer {admin}"},
            json=registration.driver_body(
                1,
                local_today(),
                name="Dana Driver",
                member_number="HA-1",
                plate="HA 1",
            ),
        )
        assert created.status_code == 201, created.text
        driver = created.json()
        rider_headers = {"Authorization": f"Bearer {rider['token']}"}
        driver_headers = {"Authorization": f"Bearer {driver['token']}"}
        async with socket(PROXY, "/v1/ws/driver", driver["token"]) as driver_socket:
            await go_online(driver_socket, DOWNTOWN)
            ask = {"pickup": DOWNTOWN, "dropoff": PLATEAU, "wheelchair_accessible": False}
            body = await consented(http, Account(uuid.UUID(rider["id"]), rider["token"]), ask)
            requested = await http.post("/v1/trips", headers=rider_headers, json=body)
            assert requested.status_code == 201, requested.text
            trip_id = requested.json()["id"]
            offer = await driver_socket.next("offer", timeout_s=30)
            accepted = await http.post(
                f"/v1/offers/{offer['offer_id']}/accept", headers=driver_headers
            )
            assert accepted.status_code == 200, accepted.text
        assert await _leaders(http) == 1

        # The primary's host loses PostgreSQL and Patroni at once: its leader key expires and
        # the synchronous replica is promoted (no acknowledged write is on one host only).
        old = components.primary()
        assert old is not None
        new = next(host for host in DATA_HOSTS if host != old)
        postmaster = components.host_dir(old) / "pg" / "data" / "postmaster.pid"
        components.signal_component(old, "patroni", signal.SIGKILL)
        os.kill(int(postmaster.read_text().split()[0]), signal.SIGKILL)

        async def promoted() -> bool:
            return await asyncio.to_thread(components.primary) == new

        await until(promoted, timeout_s=120, interval_s=0.5, what="the replica's promotion")

        # The trip goes on through the same address, on the new primary.
        arrived = await _retrying(
            lambda: http.post(f"/v1/trips/{trip_id}/arrived", headers=driver_headers)
        )
        assert arrived.status_code == 200, arrived.text
        started = await _retrying(
            lambda: http.post(f"/v1/trips/{trip_id}/start", headers=driver_headers)
        )
        assert started.status_code == 200, started.text
        seen = await _retrying(lambda: http.get(f"/v1/trips/{trip_id}", headers=rider_headers))
        assert seen.json()["status"] == "in_progress"
        assert seen.json()["driver_id"] == driver["id"]

        async def one_leader() -> bool:
            return await _leaders(http) == 1

        await until(one_leader, timeout_s=60, interval_s=0.5, what="one leader after it")
