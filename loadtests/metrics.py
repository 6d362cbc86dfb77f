"""The service's own figures, scraped from /metrics (Prometheus text, read by prometheus_client's
parser): histograms between two scrapes, and the GC pause and loop-lag line of the benchmarks."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

SampleKey = tuple[str, tuple[tuple[str, str], ...]]
Samples = dict[SampleKey, float]


def sample_key(name: str, labels: Mapping[str, str] | None = None) -> SampleKey:
    return name, tuple(sorted((labels or {}).items()))


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by (name, sorted labels)."""
    return {
        sample_key(sample.name, sample.labels): float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(base_url: str) -> Samples:
    """The service's Prometheus samples."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
        response = await http.get("/metrics")
    response.raise_for_status()
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when the service has not recorded it)."""
    return samples.get(sample_key(name, labels), 0.0)


def histogram_delta(
    before: Samples, after: Samples, name: str, labels: Mapping[str, str] | None = None
) -> tuple[int, float, list[tuple[float, int]]]:
    """(count, sum, [(upper bound, cumulative count)]) of a histogram between two scrapes."""
    wanted = dict(labels or {})

    def delta(key: SampleKey) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    count = int(delta(sample_key(f"{name}_count", wanted)))
    total = delta(sample_key(f"{name}_sum", wanted))
    buckets = []
    for key in after:
        sample_name, sample_labels = key
        if sample_name != f"{name}_bucket":
            continue
        rest = dict(sample_labels)
        bound = rest.pop("le", None)
        if bound is not None and rest == wanted:
            buckets.append((float(bound), int(delta(key))))
    return count, total, sorted(buckets)


def histogram_quantile(buckets: list[tuple[float, int]], q: float) -> float:
    """The upper bound of the bucket holding the q-th quantile (q in 0..1)."""
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    wanted = q * buckets[-1][1]
    for upper, cumulative in buckets:
        if cumulative >= wanted:
            return upper
    return float("inf")


def longest_bucket(buckets: list[tuple[float, int]]) -> float:
    """The upper bound of the highest bucket that gained a count (the longest, to a bucket)."""
    longest, previous = 0.0, 0
    for upper, cumulative in buckets:
        if cumulative > previous:
            longest = upper
        previous = cumulative
    return longest


def service_pauses(before: Samples, after: Samples) -> str:
    """One line on the service's GC pauses and event-loop lag between two scrapes (durations
    to the histogram's bucket: "<= 50 ms")."""
    parts = []
    for generation in (0, 1, 2):
        count, total, buckets = histogram_delta(
            before, after, "coop_gc_pause_seconds", {"generation": str(generation)}
        )
        if count:
            parts.append(
                f"GC gen {generation}: {count} runs, total {total * 1000:.0f} ms, "
                f"longest <= {longest_bucket(buckets) * 1000:g} ms"
            )
    if not parts and sample_key("coop_event_loop_lag_seconds_count") in after:
        parts.append("no GC run")
    count, total, buckets = histogram_delta(before, after, "coop_event_loop_lag_seconds")
    if count:
        parts.append(
            f"loop lag p50 <= {histogram_quantile(buckets, 0.5) * 1000:g} ms, "
            f"p99 <= {histogram_quantile(buckets, 0.99) * 1000:g} ms, "
            f"max <= {longest_bucket(buckets) * 1000:g} ms"
        )
    return "; ".join(parts) if parts else "no statistics (COOP_GC_STATS off?)"
