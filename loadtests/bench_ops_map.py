"""The live operations map (/ops) in a real browser with 5,000 drivers: is it still smooth?

One service process (`python -m server serve`, matcher included) on the benchmarks' own
database; 5,000 drivers written straight into it, their positions published straight into
`location_driver_position` once per batch interval (each a few metres further on, four in five
available), and riders requesting trips at a steady rate so every batch draws offer lines.
Debian's Chromium (driven by Playwright, as the browser tests do) signs in as the operator and
opens /ops at 1280x900; while the city moves, the page is dragged every few seconds (each drag
ends in a full redraw of the canvas) and the benchmark records, for `--duration` seconds:

- the time between animation frames (`requestAnimationFrame` deltas): median, p95, longest;
  a smooth page stays at the display's ~16.7 ms;
- long tasks (over 50 ms on the page's main thread, PerformanceObserver) and the longest;
- the page's JavaScript heap (Chrome DevTools Protocol `Performance.getMetrics`) at the end,
  and the main thread's busy share (script + layout + style time over wall time);
- the `city` frames received (one per batch) and their size.

Baseline, in the same run and the same way: the map with 40 drivers (the browser tests' city).
The figures go into docs/web.md ("The map at 5,000 drivers"). It measures; it fails nothing.

    python -m loadtests.bench_ops_map                    # 40, then 5,000 drivers, 30 s each
    python -m loadtests.bench_ops_map --drivers 2000 --duration 15 --no-baseline
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from loadtests.benchenv import BenchEnv, Member, asyncpg_kwargs, insert_accounts, positions_in_area
from loadtests.report import log, machine_line, median, percentile
from loadtests.runtime import run_bench

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "web.md"
START = "<!-- bench_ops_map: written by `make bench-ops-map`; do not edit -->"
END = "<!-- /bench_ops_map -->"
VIEWPORT = {"width": 1280, "height": 900}
BATCH_INTERVAL_S = 2.0  # the founding agreement's dispatch.batch_interval_ms
AVAILABLE_SHARE = 0.8
STEP_M = 15.0  # how far a driver moves between two publications
DRAG_EVERY_S = 3.0

UPSERT = """
INSERT INTO location_driver_position
    (driver_id, position, reported_at, available, available_since, last_seen_at)
SELECT d, ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography, $5, a, $5, $5
FROM unnest($1::uuid[], $2::float8[], $3::float8[], $4::bool[]) AS t(d, lat, lon, a)
ON CONFLICT (driver_id) DO UPDATE SET
    position = EXCLUDED.position, reported_at = EXCLUDED.reported_at,
    last_seen_at = EXCLUDED.last_seen_at
"""

MEASURE_JS = """() => {
  const bench = window.__bench = {frames: [], longTasks: [], stop: false};
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) bench.longTasks.push(entry.duration);
  }).observe({entryTypes: ['longtask']});
  const tick = (t) => { bench.frames.push(t); if (!bench.stop) requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
}"""


def chromium_path() -> str:
    for candidate in (os.environ.get("COOP_CHROMIUM"), "/usr/bin/chromium", "chromium"):
        if candidate and (found := shutil.which(candidate)):
            return found
    raise SystemExit("Chromium is not installed: `make test` installs Debian's chromium package")


@dataclass
class Result:
    drivers: int
    duration_s: float
    frame_deltas_ms: list[float] = field(default_factory=list)
    long_tasks_ms: list[float] = field(default_factory=list)
    heap_used_mb: float = 0.0
    heap_total_mb: float = 0.0
    busy_share: float = 0.0
    city_frames: int = 0
    city_frame_kb: float = 0.0
    drivers_shown: int = 0
    offers_drawn: int = 0

    @property
    def fps(self) -> float:
        return len(self.frame_deltas_ms) / self.duration_s if self.duration_s else 0.0


class City:
    """Drivers' positions published into the database once per batch, riders requesting."""

    def __init__(self, env: BenchEnv, drivers: list[Member], riders: list[Member], seed: int):
        self.env = env
        self.ids = [member.id for member in drivers]
        self.riders = riders
        rng = random.Random(seed)
        points = positions_in_area(len(drivers), seed)
        self.lat = [p.lat for p in points]
        self.lon = [p.lon for p in points]
        self.heading = [rng.uniform(0, 2 * math.pi) for _ in drivers]
        self.available = [rng.random() < AVAILABLE_SHARE for _ in drivers]
        self.rng = rng
        self.published = 0
        self.requested = 0

    def _move(self) -> None:
        for i in range(len(self.ids)):
            self.heading[i] += self.rng.uniform(-0.4, 0.4)
            self.lat[i] += STEP_M / 111_000 * math.cos(self.heading[i])
            self.lon[i] += (
                STEP_M / (111_000 * math.cos(math.radians(self.lat[i]))) * math.sin(self.heading[i])
            )

    async def publish(self, stop: asyncio.Event) -> None:
        import asyncpg

        connection = await asyncpg.connect(**asyncpg_kwargs(make_url(self.env.database_url)))
        try:
            while not stop.is_set():
                await connection.execute(
                    UPSERT, self.ids, self.lat, self.lon, self.available, datetime.now(UTC)
                )
                self.published += 1
                self._move()
                try:
                    await asyncio.wait_for(stop.wait(), BATCH_INTERVAL_S)
                except TimeoutError:
                    pass
        finally:
            await connection.close()

    async def request(self, base_url: str, per_s: float, stop: asyncio.Event) -> None:
        """Riders ask for trips (pickups near available drivers): offers, drawn as lines."""
        if per_s <= 0 or not self.riders:
            return
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            index = 0
            while not stop.is_set():
                rider = self.riders[index % len(self.riders)]
                index += 1
                i = self.rng.randrange(len(self.ids))
                pickup = {"lat": self.lat[i] + 0.002, "lon": self.lon[i]}
                dropoff = {"lat": self.lat[i] - 0.01, "lon": self.lon[i] + 0.01}
                headers = {"Authorization": f"Bearer {rider.token}"}
                try:
                    ask = {"pickup": pickup, "dropoff": dropoff}
                    quoted = await http.post("/v1/quotes", json=ask, headers=headers)
                    response = await http.post(
                        "/v1/trips",
                        json={**ask, "quote_id": quoted.json().get("quote_id")},
                        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                    )
                    if response.status_code == 201:
                        self.requested += 1
                    elif response.status_code == 409 and "trip_id" in response.text:
                        trip_id = response.json()["trip_id"]
                        await http.post(f"/v1/trips/{trip_id}/cancel", headers=headers)
                except httpx.HTTPError:
                    pass
                try:
                    await asyncio.wait_for(stop.wait(), 1 / per_s)
                except TimeoutError:
                    pass


async def measure(
    env: BenchEnv, drivers: int, duration_s: float, requests_per_s: float, seed: int
) -> Result:
    from playwright.async_api import async_playwright

    await env.fetch("TRUNCATE location_driver_position")
    members, riders = await insert_accounts(env, drivers=drivers, riders=50)
    city = City(env, members, riders, seed)
    stop = asyncio.Event()
    service = env.service(f"ops-map-{drivers}", COOP_BACKGROUND_TASKS="true")
    service.start()
    tasks: list[asyncio.Task[None]] = []
    try:
        await service.wait_ready_async()
        tasks.append(asyncio.create_task(city.publish(stop)))
        tasks.append(asyncio.create_task(city.request(service.base_url, requests_per_s, stop)))
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=chromium_path(),
                args=["--no-sandbox", "--disable-dev-shm-usage", "--enable-precise-memory-info"],
            )
            try:
                return await _in_browser(browser, service.base_url, env, drivers, duration_s, city)
            finally:
                await browser.close()
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        service.stop()


async def _in_browser(
    browser: Any, base_url: str, env: BenchEnv, drivers: int, duration_s: float, city: City
) -> Result:
    context = await browser.new_context(viewport=VIEWPORT, locale="en-CA")
    page = await context.new_page()
    city_bytes: list[int] = []
    await page.goto(f"{base_url}/signin?next=/ops")
    await page.locator("#token").fill(env.admin_token)
    await page.locator("form.card button[type=submit]").click()
    await page.wait_for_url(re.compile(r".*/ops$"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = int(await page.locator("body").get_attribute("data-ops-drivers") or "0")
        if shown >= drivers * 0.99:
            break
        await asyncio.sleep(0.5)
    else:
        raise SystemExit(f"the map never showed {drivers} drivers (it shows {shown})")
    cdp = await context.new_cdp_session(page)
    await cdp.send("Performance.enable")
    before = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
    frames_before = int(await page.locator("body").get_attribute("data-ops-frames") or "0")
    size_js = """() => new Promise((resolve) => {
      const source = new EventSource('/ops/stream');
      source.addEventListener('city', (event) => { source.close(); resolve(event.data.length); });
      setTimeout(() => { source.close(); resolve(0); }, 10000);
    })"""
    city_bytes.append(int(await page.evaluate(size_js)))
    await page.evaluate(MEASURE_JS)
    started = time.monotonic()
    box = await page.locator("#map").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    direction = 1
    while time.monotonic() - started < duration_s:
        await asyncio.sleep(DRAG_EVERY_S)
        await page.mouse.move(cx, cy)
        await page.mouse.down()
        for step in range(1, 11):
            await page.mouse.move(cx + direction * step * 12, cy + direction * step * 6)
        await page.mouse.up()
        direction = -direction
    elapsed = time.monotonic() - started
    data = await page.evaluate(
        "() => { window.__bench.stop = true; return {frames: window.__bench.frames, "
        "longTasks: window.__bench.longTasks}; }"
    )
    after = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
    frames_after = int(await page.locator("body").get_attribute("data-ops-frames") or "0")
    stamps: list[float] = data["frames"]
    busy = sum(
        after.get(name, 0) - before.get(name, 0)
        for name in ("ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
    )
    offers = await env.fetch("SELECT count(*) FROM trip_offer")
    result = Result(
        drivers=drivers,
        duration_s=elapsed,
        frame_deltas_ms=[b - a for a, b in zip(stamps, stamps[1:], strict=False)],
        long_tasks_ms=list(data["longTasks"]),
        heap_used_mb=after.get("JSHeapUsedSize", 0) / 2**20,
        heap_total_mb=after.get("JSHeapTotalSize", 0) / 2**20,
        busy_share=busy / elapsed,
        city_frames=frames_after - frames_before,
        city_frame_kb=(city_bytes[0] / 1024) if city_bytes else 0.0,
        drivers_shown=int(await page.locator("body").get_attribute("data-ops-drivers") or "0"),
        offers_drawn=int(offers[0][0]),
    )
    await context.close()
    return result


def row(result: Result) -> str:
    deltas = result.frame_deltas_ms
    longest_task = max(result.long_tasks_ms, default=0.0)
    return (
        f"| {result.drivers:,} | {result.drivers_shown:,} | {result.fps:.1f} | "
        f"{median(deltas):.1f} | {percentile(deltas, 95):.1f} | {max(deltas, default=0):.1f} | "
        f"{len(result.long_tasks_ms)} ({longest_task:.0f} ms) | {result.busy_share * 100:.1f} % | "
        f"{result.heap_used_mb:.1f} / {result.heap_total_mb:.1f} | {result.city_frames} | "
        f"{result.city_frame_kb:.0f} |"
    )


def report(results: list[Result], duration_s: float, requests_per_s: float) -> str:
    lines = [
        START,
        "",
        f"Measured on {datetime.now(UTC):%Y-%m-%d}, {duration_s:g} s per row, with riders "
        f"requesting {requests_per_s:g} trips a second (offer lines drawn each batch) and the "
        f"map dragged every {DRAG_EVERY_S:g} s; {machine_line()}.",
        "",
        "| drivers | on the map | frames/s | frame median ms | p95 ms | longest ms | "
        "long tasks (longest) | main thread busy | JS heap used / total MB | city frames | "
        "frame KB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(row(result) for result in results),
        "",
    ]
    if len(results) == 2:
        base, big = results
        ratio_p95 = percentile(big.frame_deltas_ms, 95) / percentile(base.frame_deltas_ms, 95)
        ratio_heap = big.heap_used_mb / base.heap_used_mb if base.heap_used_mb else float("nan")
        lines += [
            f"{big.drivers:,} drivers against {base.drivers:,}: p95 frame time × {ratio_p95:.2f}, "
            f"JS heap × {ratio_heap:.2f}.",
            "",
        ]
    lines.append(END)
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    if START in doc and END in doc:
        head, rest = doc.split(START, 1)
        _, tail = rest.split(END, 1)
        doc = head + text + tail
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    DOC.write_text(doc, encoding="utf-8")


async def main(args: argparse.Namespace) -> int:
    env = await BenchEnv.create()
    results: list[Result] = []
    sizes = ([] if args.no_baseline else [args.baseline_drivers]) + [args.drivers]
    for number, drivers in enumerate(sizes):
        if number:  # a fresh city: the previous one's drivers and trips leave the database
            await env.fetch(
                "TRUNCATE trip_offer, trip, location_driver_position, driver, rider CASCADE"
            )
        log(f"the map with {drivers:,} drivers, {args.duration:g} s")
        result = await measure(env, drivers, args.duration, args.requests_per_s, seed=number + 1)
        results.append(result)
        log(row(result))
    text = report(results, args.duration, args.requests_per_s)
    print(text)
    if args.write_doc:
        write_doc(text)
        log(f"written into {DOC.relative_to(ROOT)}")
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drivers", type=int, default=5000)
    parser.add_argument("--baseline-drivers", type=int, default=40)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured per row")
    parser.add_argument("--requests-per-s", type=float, default=1.0)
    parser.add_argument("--no-write-doc", dest="write_doc", action="store_false", help="print only")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(run_bench(main(parse(sys.argv[1:]))))
