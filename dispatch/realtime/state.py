"""The dispatch domain's part of the application state (`coop.state`): the live objects
the realtime runtime starts with the app, read by the sockets, the routes and the tests."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bargaining import service as bargaining_service
from coop import jurisdiction
from coop.errors import dependency_down
from dispatch.safety import cases, share_opening
from dispatch.safety.share_models import Sharer
from dispatch.trips.state import TripsState
from drivers import safety as drivers_safety
from riders import safety as riders_safety

logger = logging.getLogger("coop.share")

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bargaining.fares import RouteDuration
    from coop.ratelimit import SocketSlots
    from dispatch.matching.matcher import Matcher
    from dispatch.realtime.hub import Hub
    from dispatch.realtime.offer_push import OfferPushes
    from dispatch.realtime.receipts import OfferReceipts
    from dispatch.trips.models import Trip


class DispatchState(TripsState):
    hub: Hub
    matcher: Matcher
    # Open sockets per account (COOP_WS_MAX_PER_ACCOUNT), counted in Redis.
    socket_slots: SocketSlots
    receipts: OfferReceipts
    # Offers carried by push to drivers whose socket does not have them.
    offer_pushes: OfferPushes

    def route_duration(self, at: datetime) -> RouteDuration:
        return self.matcher.travel.route_duration(at)

    async def open_safety_case(self, session: AsyncSession, trip: Trip, now: datetime) -> object:
        return await cases.open_mismatch_case(session, trip=trip, now=now)

    async def after_assignment(
        self, session: AsyncSession, trip: Trip, now: datetime, base_url: str
    ) -> None:
        # Each party's own choice: the rider's, and the driver's for their own safety.
        rider = await riders_safety.load_safety_preferences(session, trip.rider_id)
        parties = [(Sharer.rider, trip.rider_id, rider.auto_share)]
        if trip.driver_id is not None:
            driver = await drivers_safety.load_sharing(session, trip.driver_id)
            parties.append((Sharer.driver, trip.driver_id, driver.auto_share))
        sharing = [party for party in parties if party[2] != "never"]
        if not sharing:
            return
        try:
            agreement = await bargaining_service.in_force(session=session, at=now)
            zone = ZoneInfo(jurisdiction.load(self.settings.jurisdiction).time_zone)
            for sharer, account_id, policy in sharing:
                await share_opening.share_at_assignment(
                    session=session,
                    redis=self.redis,
                    trip_id=trip.id,
                    account_id=account_id,
                    policy=policy,
                    night_starts=agreement.terms.safety.night_starts,
                    night_ends=agreement.terms.safety.night_ends,
                    zone=zone,
                    base_url=self.settings.web_origin or base_url,
                    now=now,
                    sharer=sharer,
                )
        except Exception as exc:
            # The trip is assigned either way; each party can share it by hand. An outage is
            # said, a bug raised.
            if dependency_down(exc) is None:
                raise
            await session.rollback()
            logger.warning("auto-share of trip %s skipped: %s unreachable", trip.id, exc)
