"""The trips' part of the application state (`coop.state`): what their routes read of the live
objects the realtime runtime starts. The travel-time model belongs to the matcher, above trips,
so trips declare what they need of it (`route_duration`) and the dispatch domain's state
(`dispatch.realtime.state.DispatchState`) answers it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from coop.state import CoreState

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bargaining.fares import RouteDuration
    from dispatch.locations.ingest import LocationIngest
    from dispatch.trips.models import Trip


class TripsState(CoreState):
    # The positions this worker holds, flushed before a move reads them.
    locations: LocationIngest

    def route_duration(self, at: datetime) -> RouteDuration:
        """A quote's duration at `at`, from the travel-time model this worker has loaded."""
        raise NotImplementedError(
            "the dispatch domain's state answers this: make the app with server.app.create_app"
        )

    async def open_safety_case(self, session: AsyncSession, trip: Trip, now: datetime) -> object:
        """Opens the safety case of a rider's `driver_or_car_does_not_match` cancellation, in
        its transaction (dispatch.safety, above trips, answers it)."""
        raise NotImplementedError(
            "the dispatch domain's state answers this: make the app with server.app.create_app"
        )

    async def after_assignment(
        self, session: AsyncSession, trip: Trip, now: datetime, base_url: str
    ) -> None:
        """Once a driver took the trip: the rider's and the driver's auto-share links where
        their policies say so (dispatch.safety, above trips, answers it). Never fails the
        assignment."""
        raise NotImplementedError(
            "the dispatch domain's state answers this: make the app with server.app.create_app"
        )
