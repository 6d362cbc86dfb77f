"""Batch timings in /metrics, and adaptive batching: early batches offer what nobody competes
for; everything else waits for the full batch, which still comes on schedule."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

from fastapi import FastAPI
from httpx import AsyncClient
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.terms import DispatchTerms, load_founding_terms
from dispatch.matching import costs
from dispatch.matching.candidates import Candidate
from dispatch.matching.matcher import Matcher, MatcherMetrics, plan
from dispatch.trips.models import Offer, Trip
from tests.builders import DOWNTOWN, make_driver, make_rider, place_driver, request_trip

TERMS = load_founding_terms().dispatch


def north(metres: float, east: float = 0.0) -> dict[str, float]:
    return {"lat": DOWNTOWN["lat"] + metres / 111_195, "lon": DOWNTOWN["lon"] + east / 77_900}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_every_stage_of_a_batch_is_timed_in_the_metrics(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    before = _samples((await client.get("/metrics", headers=admin_headers)).text)
    driver = await make_driver(client, admin_headers)
    await place_driver(app, driver.id, north(200))
    await request_trip(client, await make_rider(client))
    report = await app.state.matcher.run_batch()
    assert len(report.offers) == 1
    after = _samples((await client.get("/metrics", headers=admin_headers)).text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    for stage in MatcherMetrics.STAGES:
        assert grew("coop_matcher_stage_seconds_count", stage=stage) == 1, stage
        assert report.stages[stage] >= 0
    assert grew("coop_matcher_batch_seconds_count") == 1
    assert grew("coop_matcher_batch_requests_sum") == 1
    assert grew("coop_matcher_batch_drivers_sum") == 1
    assert grew("coop_matcher_batch_edges_sum") == 1
    assert grew("coop_matcher_batch_seconds_sum") >= sum(report.stages.values()) * 0.99


async def test_an_early_batch_offers_an_uncontested_request(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    near = await make_driver(client, admin_headers)
    await place_driver(app, near.id, north(200))
    farther = await make_driver(client, admin_headers)
    await place_driver(app, farther.id, north(900))
    trip = await request_trip(client, await make_rider(client))
    report = await app.state.matcher.run_batch(early=True)
    assert report.early
    assert [(str(o.trip_id), o.driver_id) for o in report.offers] == [(trip["id"], near.id)]


async def test_an_early_batch_leaves_contested_requests_to_the_full_batch(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    driver = await make_driver(client, admin_headers)
    await place_driver(app, driver.id, north(0))
    first = await request_trip(client, await make_rider(client), pickup=north(100))
    second = await request_trip(client, await make_rider(client), pickup=north(-150))
    # One driver, two requests that both want them: waiting for the full batch may do better.
    assert (await app.state.matcher.run_batch(early=True)).offers == []
    [offer] = (await app.state.matcher.run_batch()).offers
    assert str(offer.trip_id) == first["id"]
    assert second["id"] != first["id"]


async def test_early_batches_wait_when_many_requests_are_open(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    for i in range(3):
        driver = await make_driver(client, admin_headers)
        await place_driver(app, driver.id, north(3000 * i))
        await request_trip(client, await make_rider(client), pickup=north(3000 * i + 50))
    busy = Matcher(
        engine=app.state.engine,
        sessionmaker=app.state.sessionmaker,
        redis=app.state.redis,
        settings=app.state.settings.model_copy(update={"matcher_early_max_requests": 2}),
    )
    report = await busy.run_batch(early=True)
    assert report.requests == 3 and report.offers == [] and report.candidates == 0
    assert len((await busy.run_batch()).offers) == 3


@contextlib.asynccontextmanager
async def leading(app: FastAPI) -> AsyncIterator[Matcher]:
    """A matcher that leads the region and batches on its own schedule, as in production."""
    matcher = Matcher(
        engine=app.state.engine,
        sessionmaker=app.state.sessionmaker,
        redis=app.state.redis,
        settings=app.state.settings,
    )
    task = asyncio.create_task(matcher.run())
    try:
        deadline = time.monotonic() + 10
        while not (matcher.leading and matcher.batches > 0):
            assert time.monotonic() < deadline, "the matcher did not start leading"
            await asyncio.sleep(0.01)
        yield matcher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _offers_for(session: AsyncSession, trip_ids: list[str]) -> list[Offer]:
    rows = await session.scalars(
        select(Offer)
        .where(Offer.trip_id.in_([uuid.UUID(t) for t in trip_ids]))
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def _wait_for_offers(
    session: AsyncSession, trip_ids: list[str], timeout_s: float
) -> list[Offer]:
    deadline = time.monotonic() + timeout_s
    while True:
        offers = await _offers_for(session, trip_ids)
        await session.commit()
        if len(offers) == len(trip_ids) or time.monotonic() > deadline:
            return offers
        await asyncio.sleep(0.02)


async def test_a_lone_request_near_a_free_driver_is_offered_by_an_early_batch(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    assert TERMS.min_batch_interval_ms == 250 and TERMS.batch_interval_ms == 2000
    driver = await make_driver(client, admin_headers)
    await place_driver(app, driver.id, north(200))
    rider = await make_rider(client)
    async with leading(app) as matcher:
        # Right after a full batch, so that only an early one can answer within the interval.
        full = matcher.full_batches
        while matcher.full_batches == full:
            await asyncio.sleep(0.005)
        sent = time.monotonic()
        trip = await request_trip(client, rider)
        [offer] = await _wait_for_offers(session, [trip["id"]], timeout_s=5)
        waited_s = time.monotonic() - sent
        assert offer.driver_id == driver.id
        # The batch that wrote it counts itself once its pushes are out.
        deadline = time.monotonic() + 5
        while matcher.metrics.early_batches._value.get() < 1:
            assert time.monotonic() < deadline, "the offer did not come from an early batch"
            await asyncio.sleep(0.01)
        assert matcher.full_batches == full + 1
    # Before the next full batch (asserted above by the count of full batches), so within one
    # interval whatever the machine's load; on a quiet one, within min_batch_interval_ms and
    # the batch's own time.
    assert waited_s < TERMS.batch_interval_ms / 1000


async def test_a_burst_of_requests_is_offered_within_one_batch_interval(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    """Requests arriving together near the same drivers compete: early batches leave them, and
    the next full batch settles them together; none waits longer than one interval."""
    for i in range(4):
        driver = await make_driver(client, admin_headers)
        await place_driver(app, driver.id, north(100 * i))
    riders = [await make_rider(client) for _ in range(4)]
    async with leading(app):
        trips = await asyncio.gather(
            *(
                request_trip(client, rider, pickup=north(100 * i + 30, east=20))
                for i, rider in enumerate(riders)
            )
        )
        offers = await _wait_for_offers(session, [t["id"] for t in trips], timeout_s=8)
    assert len(offers) == 4
    by_trip = {str(o.trip_id): o for o in offers}
    for i, trip in enumerate(trips):
        # The optimum over the burst: each request gets the driver beside it.
        assert by_trip[trip["id"]].pickup_distance_m < 60, i
        row = await session.get(Trip, uuid.UUID(trip["id"]))
        assert row is not None
        waited = by_trip[trip["id"]].created_at - row.requested_at
        assert waited <= timedelta(milliseconds=TERMS.batch_interval_ms + 500), waited


# --- the uncontested rule, as a property of `plan` -----------------------------------------------


def _cost(candidate: Candidate, terms: DispatchTerms) -> int:
    return costs.edge_cost(
        pickup_eta_s=costs.pickup_eta_s(candidate.distance_m),
        idle_s=candidate.idle_s,
        fairness_weight=terms.fairness_weight,
        fairness_credit_max_s=terms.fairness_credit_max_s,
    )


candidates_strategy = st.lists(
    st.tuples(
        st.integers(0, 5),  # request
        st.integers(0, 5),  # driver
        st.floats(0, 6000, allow_nan=False),  # distance, m
        st.floats(0, 7200, allow_nan=False),  # idle, s
    ),
    min_size=1,
    max_size=30,
    unique_by=lambda edge: (edge[0], edge[1]),
)


@settings(max_examples=150, deadline=None)
@given(edges=candidates_strategy, weight=st.sampled_from(["0", "0.2", "1"]))
def test_uncontested_drafts_are_their_requests_cheapest_and_nobody_elses(
    edges: list[tuple[int, int, float, float]], weight: str
) -> None:
    trips = [uuid.UUID(int=i + 1) for i in range(6)]
    drivers = [uuid.UUID(int=100 + i) for i in range(6)]
    candidates = [
        Candidate(
            trip_id=trips[r], driver_id=drivers[d], distance_m=m, idle_s=idle, since_last_trip=True
        )
        for r, d, m, idle in edges
    ]
    terms = TERMS.model_copy(update={"fairness_weight": Decimal(weight)})
    solved = plan(candidates, terms)
    drafts = {d.trip_id: d for d in solved.drafts}
    assert solved.uncontested <= drafts.keys()
    for trip_id in drafts.keys() - solved.uncontested:
        draft = drafts[trip_id]
        others = {c.trip_id for c in candidates if c.driver_id == draft.driver_id} - {trip_id}
        cheapest = min(_cost(c, terms) for c in candidates if c.trip_id == trip_id)
        assert others or draft.cost > cheapest
    for trip_id in solved.uncontested:
        draft = drafts[trip_id]
        assert {c.trip_id for c in candidates if c.driver_id == draft.driver_id} == {trip_id}
        own = [_cost(c, terms) for c in candidates if c.trip_id == trip_id]
        assert draft.cost == min(own)
