"""The application factory: routers, error handlers, and the lifespan that owns the pools."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from bargaining import service as bargaining_service
from bargaining.dependencies import BargainingState
from bargaining.impact_replay import running as impact_replays_running
from bargaining.impact_routes import router as impact_replay_router
from bargaining.lifecycle import running as bargaining_running
from bargaining.router import router as bargaining_router
from coop import errors, keys, openapi, paging
from coop.audit import router as audit_router
from coop.auth import count_public_request
from coop.bodysize import BodySizeLimit
from coop.db import create_engine, create_sessionmaker
from coop.geo import ServiceArea
from coop.health import router as health_router
from coop.observability import Metrics, RequestContextMiddleware
from coop.push import vapid
from coop.push.lifecycle import running as push_running
from coop.push.router import router as push_router
from coop.push.state import PushState
from coop.ratelimit import RateLimits
from coop.recovery import router as recovery_router
from coop.redis_client import create_redis
from coop.settings import Settings, get_settings
from coop.tokens import router as tokens_router
from dispatch.matching import replay_job
from dispatch.realtime import runtime as dispatch_runtime
from dispatch.realtime.router import SocketRoutes
from dispatch.realtime.state import DispatchState
from dispatch.safety import share_feed
from dispatch.safety.router import router as safety_router
from dispatch.safety.share_router import router as share_router
from dispatch.trips import service as trips_service
from dispatch.trips.fare_caps import router as fare_caps_router
from dispatch.trips.pickup_router import router as trips_pickup_router
from dispatch.trips.received import router as offer_received_router
from dispatch.trips.regulator import router as regulator_router
from dispatch.trips.router import router as trips_router
from drivers.photo_router import router as drivers_photo_router
from drivers.photos import PHOTO_MAX_BYTES
from drivers.router import router as drivers_router
from drivers.safety_router import router as drivers_safety_router
from drivers.status import router as driver_status_router
from pay import lifecycle as pay_lifecycle
from pay import service as pay_service
from pay.router import router as pay_router
from reputation.policy import ReputationPolicy
from reputation.pseudonym import derive_key
from reputation.router import router as reputation_router
from reputation.state import ReputationState
from riders.router import router as riders_router
from server import exports, web
from server.accounts import router as accounts_router
from server.asyncapi import router as asyncapi_router
from server.decisions import router as decisions_router
from server.web.pages import drive as drive_app
from server.web.pages import ride as ride_app

logger = logging.getLogger("coop.app")


async def reputation_policy(session: AsyncSession, at: datetime) -> ReputationPolicy:
    """The reputation terms of the agreement in force at `at` (reputation never imports them)."""
    agreement = await bargaining_service.in_force(session=session, at=at)
    return ReputationPolicy.from_terms(
        agreement_version=agreement.version, terms=agreement.terms.reputation.model_dump()
    )


class AppState(DispatchState, BargainingState, ReputationState, PushState):
    """The app's one state (`app.state`): every layer's declared part (`coop.state`)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = Metrics()
    state = AppState(
        settings=settings,
        metrics=metrics,
        service_area=ServiceArea.from_file(settings.service_area),
    )
    rate_limits = RateLimits(settings, metrics.registry)
    state.rate_limits = rate_limits

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        redis = create_redis(settings.redis_url)
        state.engine = engine
        state.sessionmaker = create_sessionmaker(engine)
        state.redis = redis
        try:
            async with (
                bargaining_running(
                    state.sessionmaker,
                    state.tasks,
                    lambda: state.clock(),
                    background_tasks=settings.background_tasks,
                ),
                push_running(app),
                dispatch_runtime.running(app),
                web.running(app),
                share_feed.running(app),
                pay_lifecycle.running(
                    state.sessionmaker,
                    state.tasks,
                    lambda: state.clock(),
                    background_tasks=settings.background_tasks,
                ),
                impact_replays_running(
                    state.sessionmaker,
                    state.tasks,
                    lambda: state.clock(),
                    lambda: state.impact_replay_run,
                    background_tasks=settings.background_tasks,
                ),
            ):
                yield
        finally:
            # What a part left running stops here, before the pools it may use close.
            await state.tasks.stop()
            await rate_limits.close()
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Co-op ride-hail",
        version="1",
        summary="A ride-hail service owned by the drivers' union co-operative.",
        lifespan=lifespan,
        # Served by server.web with their assets from the service itself (no CDN).
        docs_url=None,
        redoc_url=None,
    )
    app.state = state
    state.ballot_master_key = keys.service_key(
        name="ballot", configured=settings.ballot_key, env=settings.env, data_dir=settings.data_dir
    )
    # Paging cursors are signed so that a made-up one is refused (coop.paging). The key is
    # derived under its own label from the ballot key rather than a secret of its own: one more
    # required secret would stop every running installation from starting after an upgrade,
    # and a derived key reveals nothing of the key it comes from.
    paging.install_cursor_key(
        hmac.new(state.ballot_master_key, b"coop.paging cursor key", hashlib.sha256).digest()
    )
    # Bargaining's impact estimates re-price the trips dispatch completed.
    state.completed_trips_source = trips_service.completed_since
    state.reputation_policy_source = reputation_policy
    # The raters' pseudonyms are keyed by their own secret, never by the admin token.
    state.pseudonym_key = derive_key(
        keys.service_key(
            name="pseudonym",
            configured=settings.pseudonym_key,
            env=settings.env,
            data_dir=settings.data_dir,
        ).decode()
    )
    # Web Push's key pair (production refuses to start without one: coop.push.vapid).
    state.vapid = vapid.load(settings)
    # The patronage dividend measures each member's work from the trips pay reads.
    state.patronage_source = pay_service.patronage_measures
    # A proposal's impact replayed through the matcher on the region's own recent days.
    state.impact_replay_run = functools.partial(replay_job.run, region=settings.matcher_region)
    # Trips, offers, positions and ballots in the personal-data exports reputation assembles.
    exports.install(app)
    # Innermost first: bodies over the limit are refused unread (with a correlation id).
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        # The photo, and the page's form that uploads it (multipart: a little over the file).
        larger={
            ("PUT", "/v1/drivers/me/photo"): PHOTO_MAX_BYTES,
            ("POST", "/me/photo"): PHOTO_MAX_BYTES + 64 * 1024,
        },
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    # The sockets skip FastAPI's routing (dispatch/realtime/router.py says why).
    app.add_middleware(SocketRoutes)
    # Outermost: the client's address, from X-Forwarded-For only behind COOP_TRUSTED_PROXIES.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    errors.register(app)
    # Probes and metrics are read often by the operators' tools, and cost nothing to answer.
    app.include_router(health_router)
    # Every API route is counted: per account (get_principal) or, public, per address.
    counted = [Depends(count_public_request)]
    for router in (
        riders_router,
        tokens_router,
        recovery_router,
        drivers_router,
        driver_status_router,
        bargaining_router,
        audit_router,
        reputation_router,
        trips_router,
        pay_router,
        decisions_router,
        regulator_router,
        fare_caps_router,
        share_router,
        safety_router,
        push_router,
        offer_received_router,
        impact_replay_router,
        drivers_photo_router,
        trips_pickup_router,
        drivers_safety_router,
        accounts_router,
    ):
        app.include_router(router, dependencies=counted)
    app.include_router(asyncapi_router, dependencies=counted)
    # The co-op's web pages; last, so the API's routes keep their paths.
    web.install(app)
    # The rider and driver apps in the browser (docs/apps.md): shells over the public API.
    app.include_router(ride_app.router)
    app.include_router(drive_app.router)
    # Every route's problem answers in /openapi.json.
    openapi.install(app)
    return app
