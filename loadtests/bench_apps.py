"""The rider and driver apps (/ride, /drive) on a slow phone connection: what they cost to
load and how smooth the driver's offer card is (docs/apps.md, "Measured").

One service process (`python -m server serve`, matcher included) on the benchmarks' own
database, and Debian's Chromium (Playwright) at phone size. For each app:

- **first visit**: an empty browser on Chromium's "Slow 4G" network emulation (562.5 ms round
  trip, 1.44 Mbit/s down, 675 kbit/s up, as DevTools sets it): the bytes transferred (the
  page, scripts, styles, icons and the API calls it makes) and the time until the app shows
  its first view (`performance.mark("app-ready")`, set by the app itself);
- **next visit**: the same browser again, the service worker installed: the same figures.

The rider app is measured signed out (a first visit opens on the sign-up form) and signed in;
the driver app signed in (a driver opens it at the start of a shift). Then the driver app's
frame rate: a signed-in driver goes available, a rider requests a trip next to them over the
API, and with the offer card (its map and its countdown) on screen the page's animation frames
are recorded for a few seconds, first at full speed, then with the CPU slowed 4 times (as
Lighthouse emulates a mid-range phone). It measures; it fails nothing.

    python -m loadtests.bench_apps            # writes the figures into docs/apps.md
    python -m loadtests.bench_apps --no-write-doc
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from loadtests.bench_ops_map import chromium_path
from loadtests.benchenv import BenchEnv
from loadtests.report import log, machine_line, median, percentile
from loadtests.runtime import run_bench

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "apps.md"
START = "<!-- bench_apps: written by `make bench-apps`; do not edit -->"
END = "<!-- /bench_apps -->"
PHONE = {"width": 390, "height": 844}
DOWNTOWN = {"lat": 45.5017, "lon": -73.5673}
NEARBY = {"lat": 45.5040, "lon": -73.5650}
DROPOFF = {"lat": 45.5225, "lon": -73.5800}
# Chromium DevTools' "Slow 4G" preset (its former "Fast 3G"), as the protocol takes it.
SLOW_4G = {
    "offline": False,
    "latency": 562.5,
    "downloadThroughput": 180_000,
    "uploadThroughput": 84_375,
}
SAMPLE_S = 5.0

LOADED_JS = """() => {
  const ready = performance.getEntriesByName("app-ready")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  const bytes = nav.transferSize + resources.reduce((sum, r) => sum + (r.transferSize || 0), 0);
  return {ready_ms: ready ? ready.startTime : null, bytes, requests: resources.length + 1};
}"""

FRAMES_JS = """(seconds) => new Promise((resolve) => {
  const stamps = [];
  const longTasks = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) longTasks.push(entry.duration);
  });
  observer.observe({type: "longtask", buffered: false});
  const end = performance.now() + seconds * 1000;
  function frame(now) {
    stamps.push(now);
    if (now < end) requestAnimationFrame(frame);
    else { observer.disconnect(); resolve({stamps, longTasks}); }
  }
  requestAnimationFrame(frame);
})"""


@dataclass
class Load:
    label: str
    visit: str
    kilobytes: float
    requests: int
    ready_ms: float


@dataclass
class Frames:
    label: str
    fps: float
    median_ms: float
    p95_ms: float
    longest_ms: float
    long_tasks: int


async def open_phone(browser: Any, init: str | None) -> tuple[Any, Any, Any]:
    context = await browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        locale="en-CA",
        geolocation={"latitude": NEARBY["lat"], "longitude": NEARBY["lon"]},
        permissions=["geolocation"],
    )
    if init:
        await context.add_init_script(init)
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", SLOW_4G)
    return context, page, cdp


async def load(page: Any, url: str) -> dict[str, Any]:
    await page.goto(url, wait_until="load", timeout=120_000)
    await page.wait_for_function(
        "() => performance.getEntriesByName('app-ready').length > 0", timeout=120_000
    )
    await asyncio.sleep(1.5)  # the calls the first view starts (the account, the agreement)
    figures: dict[str, Any] = await page.evaluate(LOADED_JS)
    return figures


async def measure_loads(browser: Any, base_url: str, app: str, token: str | None) -> list[Load]:
    init = f"localStorage.setItem('coop.{app}.token', {token!r});" if token else None
    label = f"/{app}" + (" signed in" if token else " signed out")
    context, page, _ = await open_phone(browser, init)
    results = []
    try:
        first = await load(page, f"{base_url}/{app}")
        results.append(
            Load(label, "first", first["bytes"] / 1024, first["requests"], first["ready_ms"])
        )
        await page.evaluate("() => navigator.serviceWorker.ready")
        again = await load(page, f"{base_url}/{app}")
        results.append(
            Load(label, "next", again["bytes"] / 1024, again["requests"], again["ready_ms"])
        )
    finally:
        await context.close()
    for result in results:
        log(
            f"{result.label}, {result.visit} visit: {result.kilobytes:.0f} KB in "
            f"{result.requests} requests, usable after {result.ready_ms:.0f} ms"
        )
    return results


def frames_of(label: str, data: dict[str, Any], seconds: float) -> Frames:
    stamps = data["stamps"]
    deltas = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    return Frames(
        label=label,
        fps=(len(stamps) - 1) / seconds,
        median_ms=median(deltas),
        p95_ms=percentile(deltas, 95),
        longest_ms=max(deltas),
        long_tasks=len(data["longTasks"]),
    )


async def measure_offer(
    browser: Any, base_url: str, http: httpx.AsyncClient, driver: str
) -> list[Frames]:
    context = await browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        locale="en-CA",
        geolocation={"latitude": NEARBY["lat"], "longitude": NEARBY["lon"]},
        permissions=["geolocation"],
    )
    await context.add_init_script(f"localStorage.setItem('coop.drive.token', {driver!r});")
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    try:
        await page.goto(f"{base_url}/drive")
        await page.wait_for_selector("body[data-sockets]")  # the socket is open
        await page.locator("#duty").click()
        await page.locator("#duty-text").filter(has_text="You are available").wait_for()
        await asyncio.sleep(2)  # the first positions reach the service
        rider = (await http.post("/v1/riders", json={"name": "Bench rider"})).json()
        headers = {"Authorization": f"Bearer {rider['token']}"}
        ask = {"pickup": DOWNTOWN, "dropoff": DROPOFF}
        quote = (await http.post("/v1/quotes", json=ask, headers=headers)).json()
        trip = await http.post(
            "/v1/trips", json={**ask, "quote_id": quote["quote_id"]}, headers=headers
        )
        assert trip.status_code == 201, trip.text
        await page.locator("#offer").wait_for(state="visible", timeout=30_000)
        results = [
            frames_of("offer card and map", await page.evaluate(FRAMES_JS, SAMPLE_S), SAMPLE_S)
        ]
        await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
        results.append(
            frames_of(
                "offer card and map, CPU 4× slower",
                await page.evaluate(FRAMES_JS, SAMPLE_S),
                SAMPLE_S,
            )
        )
    finally:
        await context.close()
    for result in results:
        log(
            f"{result.label}: {result.fps:.1f} frames/s, median {result.median_ms:.1f} ms, "
            f"p95 {result.p95_ms:.1f} ms, longest {result.longest_ms:.1f} ms, "
            f"{result.long_tasks} long tasks"
        )
    return results


async def new_driver(http: httpx.AsyncClient, admin: str) -> str:
    from server.simulator import registration

    response = await http.post(
        "/v1/drivers",
        headers={"Authorization": f"Bearer {admin}"},
        json=registration.driver_body(
            7,
            datetime.now(UTC).date(),
            name="Bench driver",
            member_number="BENCH-APPS-7",
            plate="BENCH 7",
            simulated=True,
        ),
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def report(loads: list[Load], frames: list[Frames]) -> str:
    lines = [
        START,
        "",
        f"Measured on {datetime.now(UTC):%Y-%m-%d} with `make bench-apps`; {machine_line()}.",
        "",
        "| app | visit | transferred | requests | usable after |",
        "|---|---|---|---|---|",
    ]
    for load_ in loads:
        lines.append(
            f"| {load_.label} | {load_.visit} | {load_.kilobytes:,.0f} KB | {load_.requests} "
            f"| {load_.ready_ms / 1000:.1f} s |"
        )
    lines += [
        "",
        f"The driver app with an offer card on screen, {SAMPLE_S:g} s each:",
        "",
        "| | frames/s | frame median | p95 | longest | long tasks |",
        "|---|---|---|---|---|---|",
    ]
    for f in frames:
        lines.append(
            f"| {f.label} | {f.fps:.1f} | {f.median_ms:.1f} ms | {f.p95_ms:.1f} ms "
            f"| {f.longest_ms:.1f} ms | {f.long_tasks} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    current = DOC.read_text(encoding="utf-8")
    head, _, rest = current.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(head + text + tail, encoding="utf-8")


async def main(args: argparse.Namespace) -> int:
    from playwright.async_api import async_playwright

    env = await BenchEnv.create()
    service = env.service("apps", COOP_BACKGROUND_TASKS="true")
    service.start()
    try:
        await service.wait_ready_async()
        async with (
            httpx.AsyncClient(base_url=service.base_url, timeout=30) as http,
            async_playwright() as playwright,
        ):
            rider = (await http.post("/v1/riders", json={"name": "Bench rider"})).json()["token"]
            driver = await new_driver(http, env.admin_token)
            browser = await playwright.chromium.launch(
                executable_path=chromium_path(),
                args=["--no-sandbox", "--disable-dev-shm-usage"],
            )
            try:
                loads = await measure_loads(browser, service.base_url, "ride", None)
                loads += await measure_loads(browser, service.base_url, "ride", rider)
                loads += await measure_loads(browser, service.base_url, "drive", driver)
                frames = await measure_offer(browser, service.base_url, http, driver)
            finally:
                await browser.close()
    finally:
        service.stop()
    text = report(loads, frames)
    print(text)
    if args.write_doc:
        write_doc(text)
        log(f"written into {DOC.relative_to(ROOT)}")
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-write-doc", dest="write_doc", action="store_false", help="print only")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(run_bench(main(parse(sys.argv[1:]))))
