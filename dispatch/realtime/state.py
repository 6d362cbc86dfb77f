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
from dispatch.trips.state import TripsState
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
        preferences = await riders_safety.load_safety_preferences(session, trip.rider_id)
        if preferences.auto_share == "never":
            return
        try:
            agreement = await bargaining_service.in_force(session=session, at=now)
            await share_opening.share_at_assignment(
                session=session,
                redis=self.redis,
                trip_id=trip.id,
                rider_id=trip.rider_id,
                policy=preferences.auto_share,
                night_starts=agreement.terms.safety.night_starts,
                night_ends=agreement.terms.safety.night_ends,
                zone=ZoneInfo(jurisdiction.load(self.settings.jurisdiction).time_zone),
                base_url=self.settings.web_origin or base_url,
                now=now,
            )
        except Exception as exc:
            # The trip is assigned either way; the rider can share it by hand. An outage is
            # said, a bug raised.
            if dependency_down(exc) is None:
                raise
            await session.rollback()
            logger.warning("auto-share of trip %s skipped: %s unreachable", trip.id, exc)
