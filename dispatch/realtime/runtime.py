"""What realtime dispatch runs beside the HTTP routes, started and stopped by the app lifespan,
every loop on the app's one runner (`coop.tasks`).

Always: the hub (sockets need it), the offer receipts' writer and, with `COOP_GC_STATS`, the
loop-lag probe. With `COOP_BACKGROUND_TASKS` (off in tests, which drive these by hand): the
agreement refresher of the ingest, the location flusher, the region's matcher (whose batches also
sweep expired offers and unfulfilled requests) and the travel-time model's reload.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

from fastapi import FastAPI
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from bargaining import service as bargaining_service
from bargaining.exceptions import NoAgreementInForce
from coop.auth import valid_token_keys
from coop.push.state import PushState
from coop.ratelimit import SocketSlots
from coop.state import state_of
from coop.tasks import TaskHandle
from dispatch.locations.ingest import LocationIngest
from dispatch.matching.matcher import Matcher, MatcherMetrics
from dispatch.matching.traveltime import FloatArray, IntArray
from dispatch.realtime import ridecheck_socket
from dispatch.realtime.hub import Hub
from dispatch.realtime.offer_push import OfferPushes
from dispatch.realtime.pauses import PauseMonitor
from dispatch.realtime.receipts import OfferReceipts
from dispatch.realtime.state import DispatchState
from dispatch.safety import retention as safety_retention

logger = logging.getLogger("coop.realtime")

# How often the ingest re-reads the agreement's dispatch.max_plausible_speed_kmh.
AGREEMENT_REFRESH_S = 30.0


async def refresh_ingest_terms(app: FastAPI) -> None:
    """Hands the ingest the plausible-speed limit of the agreement in force now."""
    state = state_of(app, DispatchState)
    async with state.sessionmaker() as session:
        try:
            agreement = await bargaining_service.in_force(session=session, at=state.clock())
        except NoAgreementInForce:  # a state, not a fault: the limit in force stays
            return
        state.locations.set_max_plausible_speed(agreement.terms.dispatch.max_plausible_speed_kmh)


class DispatchCollector:
    """Dispatch's figures for `/metrics`, read from the live objects at each scrape."""

    def __init__(
        self, hub: Hub, ingest: LocationIngest, matcher: Matcher, receipts: OfferReceipts
    ) -> None:
        self.hub, self.ingest, self.matcher = hub, ingest, matcher
        self.receipts = receipts

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "coop_ws_connections", "WebSockets open on this worker", value=self.hub.connections
        )
        yield CounterMetricFamily(
            "coop_ws_frames_delivered",
            "Frames handed to local sockets' send queues",
            value=self.hub.delivered,
        )
        yield CounterMetricFamily(
            "coop_ws_frames_dropped_slow",
            "Frames not sent because the client read too slowly (it was disconnected)",
            value=self.hub.dropped_slow,
        )
        yield CounterMetricFamily(
            "coop_ws_resyncs",
            "Sockets closed with 1012 because frames for them may have been lost",
            value=self.hub.resynced,
        )
        yield CounterMetricFamily(
            "coop_ws_redis_losses",
            "Times this worker's subscription connection to Redis was lost",
            value=self.hub.redis_losses,
        )
        yield GaugeMetricFamily(
            "coop_ws_redis_connected",
            "1 while this worker is subscribed on a Redis connection that answers",
            value=1 if self.hub.connected else 0,
        )
        yield CounterMetricFamily(
            "coop_ws_frames_lost",
            "Frames Redis did not take and no local socket could: their clients are resynced",
            value=self.hub.lost.lost,
        )
        yield CounterMetricFamily(
            "coop_ws_frames_delivered_locally",
            "Frames Redis did not take, delivered straight to a socket of this worker",
            value=self.hub.lost.delivered_locally,
        )
        yield CounterMetricFamily(
            "coop_offer_receipts",
            "Offers this worker's driver sockets wrote, recorded as delivered",
            value=self.receipts.recorded,
        )
        yield CounterMetricFamily(
            "coop_location_reports",
            "Driver location reports taken in",
            value=self.ingest.reports_received,
        )
        yield CounterMetricFamily(
            "coop_location_reports_rate_limited",
            "Location reports dropped: beyond one per 100 ms on average from a driver",
            value=self.ingest.reports_rate_limited,
        )
        yield CounterMetricFamily(
            "coop_availability_rate_limited",
            "Availability frames refused (`rate_limited`) for coming faster than the pace",
            value=self.ingest.availability_rate_limited,
        )
        yield CounterMetricFamily(
            "coop_location_reports_implausible",
            "Location reports not believed: an impossible speed since the last one",
            value=self.ingest.reports_implausible,
        )
        yield CounterMetricFamily(
            "coop_location_flushes", "Bulk writes of positions", value=self.ingest.flushes
        )
        yield CounterMetricFamily(
            "coop_location_flush_failures",
            "Bulk writes of positions that failed (what they held stays buffered)",
            value=self.ingest.flush_failures,
        )
        yield GaugeMetricFamily(
            "coop_location_buffered_drivers",
            "Drivers whose latest position waits for the next flush",
            value=self.ingest.pending,
        )
        yield GaugeMetricFamily(
            "coop_location_buffered_trail_points",
            "Trail points waiting for the next flush",
            value=self.ingest.buffered_trail_points,
        )
        yield CounterMetricFamily(
            "coop_location_trail_points_dropped",
            "Unwritten trail points dropped, oldest first, to keep the buffer bounded",
            value=self.ingest.trail_points_dropped,
        )
        yield CounterMetricFamily(
            "coop_location_reports_shed",
            "Location frames shed (an `overloaded` error frame) while flushes fell behind",
            value=self.ingest.reports_shed,
        )
        yield CounterMetricFamily(
            "coop_location_reports_stale",
            "Of the shed location frames, those dropped for waiting over 2 s before being read",
            value=self.ingest.reports_stale,
        )
        yield GaugeMetricFamily(
            "coop_location_report_gap_seconds",
            "How often each driver's location frames are taken while shedding (0: not shedding)",
            value=self.ingest.shed_gap_s,
        )
        yield GaugeMetricFamily(
            "coop_location_busy_ratio",
            "How busy the worker was over the last 5 s: its process's share of one core, or its "
            "flushes' share of the time, whichever is higher (backpressure narrows the gap "
            "under 0.9)",
            value=self.ingest.busy,
        )
        yield GaugeMetricFamily(
            "coop_location_flush_slowest_seconds",
            "The slowest bulk write of positions in the last 5 s (or the one running)",
            value=self.ingest.slowest_flush_s,
        )
        yield GaugeMetricFamily(
            "coop_location_queue_delay_seconds",
            "Median wait of the location frames read lately before the service read them "
            "(by their ts, against each socket's usual)",
            value=self.ingest.queue_delay_s,
        )
        yield CounterMetricFamily(
            "coop_ws_closed_overloaded",
            "Driver sockets closed (1013) for sending location frames faster than asked",
            value=self.ingest.sockets_closed_for_ignoring,
        )
        yield GaugeMetricFamily(
            "coop_matcher_leading",
            "1 while this worker's matcher leads its region",
            value=1 if self.matcher.leading else 0,
        )
        yield CounterMetricFamily(
            "coop_matcher_batches", "Matching batches run", value=self.matcher.batches
        )
        yield CounterMetricFamily(
            "coop_matcher_offers", "Offers made by this worker", value=self.matcher.offers_made
        )
        yield GaugeMetricFamily(
            "coop_travel_model_version",
            "The travel-time model version this worker quotes and matches with (0: the prior)",
            value=self.matcher.travel.model.version,
        )
        yield CounterMetricFamily(
            "coop_travel_model_reload_failures",
            "Times reading the travel-time model failed (the one in use was kept)",
            value=self.matcher.travel.failures,
        )
        yield CounterMetricFamily(
            "coop_travel_model_recompute_failures",
            "Times this worker's leader failed to recompute the travel-time model",
            value=self.matcher.travel_recompute_failures,
        )


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    state = state_of(app, DispatchState)
    settings = state.settings
    sessionmaker = state.sessionmaker

    async def still_valid(token_keys: list[str]) -> set[str]:
        return await valid_token_keys(sessionmaker, token_keys, settings)

    runner = state.tasks
    hub = Hub(state.redis, still_valid, tasks=runner)
    ingest = LocationIngest(
        engine=state.engine,
        redis=state.redis,
        grace_s=settings.driver_grace_s,
        backpressure=settings.location_backpressure,
        time_scale=settings.meter_time_scale,
    )
    matcher_metrics = MatcherMetrics()
    matcher = Matcher(
        engine=state.engine,
        sessionmaker=state.sessionmaker,
        redis=state.redis,
        settings=settings,
        metrics=matcher_metrics,
        clock=lambda: state.clock(),
    )
    receipts = OfferReceipts(state.sessionmaker, tasks=runner, clock=lambda: state.clock())

    def riders_eta(
        from_lat: FloatArray, from_lon: FloatArray, to_lat: FloatArray, to_lon: FloatArray
    ) -> IntArray:
        return matcher.travel.drive_s_array(state.clock(), from_lat, from_lon, to_lat, to_lon)

    ingest.eta = riders_eta
    hub.flush_positions = ingest.flush
    state.hub = hub
    state.socket_slots = SocketSlots(state.rate_limits, settings.ws_max_per_account)
    state.receipts = receipts
    state.locations = ingest
    state.matcher = matcher
    collector = DispatchCollector(hub, ingest, matcher, receipts)
    registry = state.metrics.registry
    registry.register(collector)
    registry.register(matcher_metrics)
    ride_figures = ridecheck_socket.RideCheckCollector()
    registry.register(ride_figures)
    pauses = PauseMonitor(registry, tasks=runner) if settings.gc_stats else None
    if pauses is not None:
        pauses.start()
    receipts.start()
    # Offers reach drivers without an open socket by push (coop.push, started before this).
    offer_pushes = OfferPushes(
        state_of(app, PushState).push,
        state.sessionmaker,
        tasks=runner,
        clock=lambda: state.clock(),
    )
    matcher.on_offers = offer_pushes.offered
    state.offer_pushes = offer_pushes
    offer_pushes.start()
    await hub.start()
    try:
        await refresh_ingest_terms(app)
    except Exception as exc:  # the founding limit holds until the next read
        runner.failed("ingest-agreement", exc)
    # The travel-time model quotes and ETAs use (the prior until it reads one; kept if it fails).
    await matcher.travel.try_refresh()
    handles: list[TaskHandle] = []
    if settings.background_tasks:

        async def refresh_terms() -> None:
            await refresh_ingest_terms(app)

        flush_interval_s = settings.location_flush_interval_ms / 1000

        async def flush_positions() -> None:
            await ingest.run(flush_interval_s)

        async def ride_check() -> None:
            await ridecheck_socket.sweep(state, ride_figures)

        async def purge_safety_alerts() -> None:
            async with state.sessionmaker() as session:
                await safety_retention.purge(session, now=state.clock())
                await session.commit()

        handles = [
            runner.every(
                "ingest-agreement",
                AGREEMENT_REFRESH_S,
                refresh_terms,
                first_after_s=AGREEMENT_REFRESH_S,  # read just above
            ),
            # The ingest's own loop: it adjusts its shedding to each flush's duration.
            runner.forever("location-flusher", flush_positions),
            runner.forever(f"matcher-{matcher.region}", matcher.run),
            runner.forever("traveltime-reload", matcher.travel.run),
            # The ride check (docs/safety.md): on every worker, each trip taken by one of them.
            runner.every("ride-check", ridecheck_socket.SWEEP_INTERVAL_S, ride_check),
            runner.every("safety-purge", safety_retention.PURGE_INTERVAL_S, purge_safety_alerts),
        ]
    try:
        yield
    finally:
        for handle in reversed(handles):
            await handle.stop()
        if settings.background_tasks:
            await ingest.drain()
        await hub.stop()
        await offer_pushes.stop()
        await receipts.drain()
        # The flush's own connection (its engine, outside the app's pool) goes with the app: a
        # process that makes and stops apps (the tests, a reload) would otherwise keep one
        # PostgreSQL connection open for each until the server refused new ones.
        await ingest.close()
        if pauses is not None:
            await pauses.stop()
        registry.unregister(collector)
        registry.unregister(matcher_metrics)
        registry.unregister(ride_figures)
