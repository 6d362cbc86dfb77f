"""The dispatch domain's part of the application state (`coop.state`): the live objects
the realtime runtime starts with the app, read by the sockets, the routes and the tests."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from dispatch.safety import cases
from dispatch.trips.state import TripsState

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
