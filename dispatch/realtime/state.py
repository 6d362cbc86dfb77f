"""The dispatch domain's part of the application state (`coop.state`): the live objects
the realtime runtime starts with the app, read by the sockets, the routes and the tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coop.state import CoreState

if TYPE_CHECKING:
    from coop.ratelimit import SocketSlots
    from dispatch.locations.ingest import LocationIngest
    from dispatch.matching.matcher import Matcher
    from dispatch.realtime.hub import Hub
    from dispatch.realtime.receipts import OfferReceipts


class DispatchState(CoreState):
    hub: Hub
    locations: LocationIngest
    matcher: Matcher
    # Open sockets per account (COOP_WS_MAX_PER_ACCOUNT), counted in Redis.
    socket_slots: SocketSlots
    receipts: OfferReceipts
