"""A simulated city run against a live service: drivers connect and roam, riders arrive as a
Poisson process, and a summary line shows how dispatch is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from coop.geo import ServiceArea
from server.simulator import pay, registration
from server.simulator.agents import Registered, SimDriver, sleep_or_stop
from server.simulator.client import FrameObserver, ServiceClient, bearer
from server.simulator.config import SimulationConfig
from server.simulator.curb import Curb
from server.simulator.movement import DOWNTOWN_MONTREAL, Point, poisson_gap_s
from server.simulator.riders import SimRider
from server.simulator.stats import CityStats

# Share of the agreement's plausible speed the simulated cars may reach in real time.
SPEED_LIMIT_SHARE = 0.5

logger = logging.getLogger("coop.simulator")

REGISTRATION_CONCURRENCY = 10
REGISTRATION_ATTEMPTS = 4
SHUTDOWN_GRACE_S = 10.0
PAY_READ_INTERVAL_S = 5.0  # real seconds between rounds of statement reads


class SimulationError(RuntimeError):
    """The run cannot start: the service is unreachable or refuses the simulator's accounts."""


def busy_centre(area: ServiceArea, requested: Point | None) -> Point:
    """Where the simulated city is busiest: the one asked for, else downtown Montréal when it is
    inside the area, else a point well inside the area."""
    if requested is not None:
        if not area.contains(requested.lat, requested.lon):
            raise SimulationError(
                f"the centre ({requested.lat}, {requested.lon}) is outside the service area"
            )
        return requested
    if area.contains(*DOWNTOWN_MONTREAL):
        return Point(*DOWNTOWN_MONTREAL)
    inside = area.geometry.representative_point()
    return Point(inside.y, inside.x)


class Simulation:
    """One run of the city: `run()` lasts until the duration, the request budget, or `stop()`."""

    def __init__(
        self,
        config: SimulationConfig,
        *,
        out: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        observer: FrameObserver | None = None,
        client_class: type[ServiceClient] = ServiceClient,
    ) -> None:
        self.config = config
        self.observer = observer
        self.client_class = client_class  # a subclass may watch every call and socket
        self.out = out or (lambda line: print(line, flush=True))
        self.clock = clock
        self.stats = CityStats()
        self.area = ServiceArea.from_file(config.service_area)
        self.center = busy_centre(self.area, config.center)
        self.rng = random.Random(config.seed)
        self.run_id = secrets.token_hex(3)  # member numbers differ from run to run, seed or not
        self.drivers: list[SimDriver] = []
        self._stop = asyncio.Event()
        self._riders: set[asyncio.Task[None]] = set()
        # Where riders tell their driver the PIN: shared by every agent of the run.
        self.curb = Curb()
        self._started_at = clock()

    def stop(self) -> None:
        """Asks the run to end: riders stop waiting, drivers go unavailable and disconnect."""
        self._stop.set()

    def _agent_rng(self) -> random.Random:
        return random.Random(self.rng.getrandbits(64))

    async def run(self) -> CityStats:
        """Runs the city; answers the final counters."""
        timeout = httpx.Timeout(15.0, connect=5.0)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)
        async with httpx.AsyncClient(
            base_url=self.config.base_url, timeout=timeout, limits=limits
        ) as http:
            client = self.client_class(http, self.stats, self.observer)
            await self._check_service(http)
            await self._keep_to_the_speed_limit(http)
            accounts = await self._register_drivers(http)
            self._started_at = self.clock()
            self.drivers = [
                SimDriver(
                    number=number,
                    account=account,
                    client=client,
                    config=self.config,
                    area=self.area,
                    center=self.center,
                    stats=self.stats,
                    rng=self._agent_rng(),
                    stop=self._stop,
                    clock=self.clock,
                    curb=self.curb,
                )
                for number, account in enumerate(accounts, start=1)
            ]
            driver_tasks = [asyncio.create_task(driver.run()) for driver in self.drivers]
            summary = asyncio.create_task(self._summarise())
            statements = asyncio.create_task(
                pay.watch(
                    client,
                    self.drivers,
                    self.stats,
                    self._stop,
                    max(self.config.summary_interval_s, PAY_READ_INTERVAL_S),
                )
            )
            arrivals = asyncio.create_task(self._arrivals(client))
            try:
                await self._until_done(arrivals)
            finally:
                self._stop.set()
                arrivals.cancel()
                await self._finish(driver_tasks, [arrivals, summary, statements])
            await pay.print_busiest(client, self.drivers, self.out)
            self.out(self.stats.summary_line(self.clock() - self._started_at))
        return self.stats

    async def _keep_to_the_speed_limit(self, http: httpx.AsyncClient) -> None:
        """The service believes no move faster than the agreement's
        dispatch.max_plausible_speed_kmh on its clock, which runs `service_time_scale` times
        faster than real time (the demo's runs as fast as the city: `speedup`). A car's speed
        as the service sees it is its simulated speed x speedup / service_time_scale: when the
        two clocks agree, the cars drive at their own (city) speeds. When they do not (a city
        sped up against a service on real time), the cars slow down until that speed stays
        under half the limit (a loaded machine bunches reports together: the margin keeps
        them believed), and the run says so: its trips then last longer than they should."""
        response = await http.get("/v1/agreements/current")
        if response.status_code != 200:
            raise SimulationError(f"cannot read the agreement in force: {response.text}")
        limit_kmh = float(response.json()["terms"]["dispatch"]["max_plausible_speed_kmh"])
        clocks = self.config.service_time_scale / self.config.speedup
        allowed_mps = SPEED_LIMIT_SHARE * limit_kmh / 3.6 * clocks
        if self.config.speed_max_mps <= allowed_mps:
            return
        self.config = dataclasses.replace(
            self.config,
            speed_max_mps=allowed_mps,
            speed_min_mps=min(self.config.speed_min_mps, allowed_mps),
        )
        logger.warning(
            f"cars drive at most {allowed_mps * 3.6:.1f} km/h of simulated time: the city runs "
            f"{self.config.speedup:g} times faster than real time and the service's clock "
            f"{self.config.service_time_scale:g} times, so faster cars would break the "
            f"agreement's {limit_kmh:g} km/h; run the service with COOP_METER_TIME_SCALE="
            f"{self.config.speedup:g} (as `make demo` does) for cars at city speeds"
        )

    async def _check_service(self, http: httpx.AsyncClient) -> None:
        try:
            response = await http.get("/readyz")
        except httpx.HTTPError as exc:
            raise SimulationError(
                f"cannot reach the service at {self.config.base_url}: {exc}"
            ) from exc
        if response.status_code != 200:
            raise SimulationError(
                f"the service at {self.config.base_url} is not ready: {response.text}"
            )

    async def _post_driver(
        self, http: httpx.AsyncClient, number: int, body: dict[str, Any]
    ) -> httpx.Response:
        """POST /v1/drivers, again after a dropped connection or a 5xx (a busy or restarting
        service), each time under a new member number: a lost answer may have registered one."""
        for attempt in range(REGISTRATION_ATTEMPTS):
            if attempt:
                await asyncio.sleep(2.0**attempt)
                body = {**body, "member_number": f"{body['member_number']}-{attempt}"}
            try:
                response = await http.post(
                    "/v1/drivers", json=body, headers=bearer(self.config.admin_token)
                )
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__} {exc}"
                continue
            if response.status_code < 500:
                return response
            error = f"{response.status_code} {response.text}"
        raise SimulationError(f"registering driver {number} failed: {error}")

    async def _register_drivers(self, http: httpx.AsyncClient) -> list[Registered]:
        gate = asyncio.Semaphore(REGISTRATION_CONCURRENCY)

        async def register(number: int) -> Registered:
            accessible = self.rng.random() < self.config.accessible_share
            body = registration.driver_body(
                number,
                datetime.now(UTC).date(),
                name=f"Simulated driver {number}",
                member_number=f"SIM-{self.run_id}-{number:04d}",
                plate=f"SIM {number:04d}",
                wheelchair_accessible=accessible,
                simulated=True,
            )
            async with gate:
                response = await self._post_driver(http, number, body)
            if response.status_code in {401, 403}:
                raise SimulationError(
                    "the service refused the admin token; pass the one it uses "
                    "(COOP_ADMIN_TOKEN or --admin-token)"
                )
            if response.status_code != 201:
                raise SimulationError(
                    f"registering driver {number} answered {response.status_code}: {response.text}"
                )
            created = response.json()
            return Registered(id=str(created["id"]), token=str(created["token"]))

        accounts = await asyncio.gather(
            *(register(number) for number in range(1, self.config.drivers + 1))
        )
        self.stats.drivers_total = len(accounts)
        return list(accounts)

    async def _arrivals(self, client: ServiceClient) -> None:
        """Riders arrive as a Poisson process of `rate_per_min` a minute of wall-clock time."""
        if self.config.rate_per_min <= 0:
            return
        rate_per_s = self.config.rate_per_min / 60.0
        number = 0
        while self.config.max_requests is None or number < self.config.max_requests:
            if await sleep_or_stop(self._stop, poisson_gap_s(self.rng, rate_per_s)):
                return
            number += 1
            rider = SimRider(
                number=number,
                client=client,
                config=self.config,
                area=self.area,
                center=self.center,
                stats=self.stats,
                rng=self._agent_rng(),
                stop=self._stop,
                clock=self.clock,
                curb=self.curb,
            )
            task = asyncio.create_task(rider.run())
            self._riders.add(task)
            task.add_done_callback(self._rider_done)

    def _rider_done(self, task: asyncio.Task[None]) -> None:
        self._riders.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a simulated rider failed", exc_info=task.exception())

    async def _until_done(self, arrivals: asyncio.Task[None]) -> None:
        """Waits for the stop, the duration, or (with a request budget) every rider's end."""
        deadline = None
        if self.config.duration_s is not None:
            deadline = self._started_at + self.config.duration_s
        while not self._stop.is_set():
            if deadline is not None and self.clock() >= deadline:
                return
            if arrivals.done() and self.config.max_requests is not None and not self._riders:
                arrivals.result()  # raises what broke the arrivals, if anything did
                return
            wait_s = 0.2 if deadline is None else min(0.2, max(0.0, deadline - self.clock()))
            await sleep_or_stop(self._stop, wait_s)

    async def _summarise(self) -> None:
        while not await sleep_or_stop(self._stop, self.config.summary_interval_s):
            self.out(self.stats.summary_line(self.clock() - self._started_at))

    async def _finish(
        self, driver_tasks: list[asyncio.Task[None]], others: list[asyncio.Task[None]]
    ) -> None:
        everyone = [*driver_tasks, *self._riders, *others]
        _, pending = await asyncio.wait(everyone, timeout=SHUTDOWN_GRACE_S)
        for task in pending:
            task.cancel()
        results = await asyncio.gather(*everyone, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, asyncio.CancelledError):
                logger.error("a simulation task failed at shutdown", exc_info=result)


async def simulate(
    config: SimulationConfig, *, out: Callable[[str], None] | None = None
) -> CityStats:
    """Runs the city until it is done; Ctrl-C (SIGINT) or SIGTERM stops it cleanly."""
    import signal

    simulation = Simulation(config, out=out)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, simulation.stop)
    try:
        return await simulation.run()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
