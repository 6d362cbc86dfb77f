"""Trips a driver left open past the agreement's terms, ended by the service (docs/dispatch.md,
"Trips left open"). Without this an `arrived` or `in_progress` trip could stay open for hours,
and every hour of it would count as engaged time toward the hourly floor (docs/pay.md).

- `arrived`, and the ride not started `dispatch.no_show_wait_s` after the arrival: cancelled as
  the rider's no-show, with the rider's cancellation fee under its usual rules.
- `in_progress` past its quote's `duration_s` with the agreement's overrun: completed, metered
  only up to that plausible end, and marked `ride_overrun` for the operators' review list.

Each trip is its own conditional UPDATE and commit: a driver's `start` or `complete` racing the
sweep either lands first (and the sweep passes) or finds the trip ended.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import service as bargaining_service
from bargaining.terms import DispatchTerms
from coop.errors import InvalidTransition
from dispatch.states import TRANSITIONS, Move, TripStatus, TripTimeout
from dispatch.trips import cancellation, moves
from dispatch.trips import pin as pins
from dispatch.trips.models import CancelledBy, Trip

logger = logging.getLogger("coop.trips")


def overrun_s(terms: DispatchTerms, estimate_s: int) -> int:
    """The longest a leg estimated at `estimate_s` may plausibly take under `terms`."""
    return estimate_s + estimate_s * terms.overrun_percent // 100 + terms.overrun_s


@dataclass
class _Terms:
    """Each agreement version's dispatch terms, read once per sweep."""

    session: AsyncSession
    known: dict[int, DispatchTerms]

    async def of(self, trip: Trip) -> DispatchTerms:
        if trip.agreement_version not in self.known:
            agreement = await bargaining_service.get_version(
                session=self.session, version=trip.agreement_version
            )
            self.known[trip.agreement_version] = agreement.terms.dispatch
        return self.known[trip.agreement_version]


async def time_out(
    *, session: AsyncSession, now: datetime, region: str | None = None, time_scale: float = 1.0
) -> list[Trip]:
    """Ends the trips of `region` (all regions if None) that outlasted the agreement's waits;
    answers them, for their rider and driver to be told."""
    terms = _Terms(session, {})
    ended = [
        *await _no_shows(session, terms, now, region),
        *await _overruns(session, terms, now, region, time_scale),
    ]
    # A PIN outlives no trip that ended without its ride (dispatch/trips/pin.py).
    await pins.erase_ended(session)
    await session.commit()
    return ended


async def _open(session: AsyncSession, status: TripStatus, region: str | None) -> list[Trip]:
    query = select(Trip).where(Trip.status == status)
    if region is not None:
        query = query.where(Trip.region == region)
    trips = list(await session.scalars(query.execution_options(populate_existing=True)))
    await session.commit()
    return trips


async def _no_shows(
    session: AsyncSession, terms: _Terms, now: datetime, region: str | None
) -> list[Trip]:
    ended: list[Trip] = []
    for trip in await _open(session, TripStatus.arrived, region):
        assert trip.arrived_at is not None
        wait_s = (await terms.of(trip)).no_show_wait_s
        if trip.arrived_at + timedelta(seconds=wait_s) > now:
            continue
        fee, why = await cancellation.rider_cancellation_fee(session, trip, now)
        done = await session.scalar(
            update(Trip)
            .where(Trip.id == trip.id, Trip.status == TripStatus.arrived)
            .values(
                status=TRANSITIONS[Move.cancel].target,
                ended_at=now,
                # The rider's: they did not come, and it is their fee that applies.
                cancelled_by=CancelledBy.rider,
                cancellation_fee=fee,
                cancellation_fee_reason=(
                    f"The ride had not started {wait_s} s after the driver arrived (the "
                    f"agreement's dispatch.no_show_wait_s): a no-show. {why}"
                ),
                timed_out=TripTimeout.no_show,
            )
            .returning(Trip)
            .execution_options(populate_existing=True)
        )
        await session.commit()
        if done is not None:
            ended.append(done)
    return ended


async def _overruns(
    session: AsyncSession, terms: _Terms, now: datetime, region: str | None, time_scale: float
) -> list[Trip]:
    ended: list[Trip] = []
    for trip in await _open(session, TripStatus.in_progress, region):
        assert trip.started_at is not None and trip.driver_id is not None
        # The meter pays a sped-up demo's minutes at `time_scale`: its plausible end comes as
        # much sooner on the wall clock.
        longest_s = overrun_s(await terms.of(trip), int(trip.quote["duration_s"])) / time_scale
        plausible_end = trip.started_at + timedelta(seconds=longest_s)
        if plausible_end > now:
            continue
        done = await _complete(session, trip.id, trip.driver_id, now, plausible_end, time_scale)
        if done is not None:
            ended.append(done)
    return ended


async def _complete(
    session: AsyncSession,
    trip_id: uuid.UUID,
    driver_id: uuid.UUID,
    now: datetime,
    plausible_end: datetime,
    time_scale: float,
) -> Trip | None:
    try:
        return await moves.complete(
            session=session,
            trip_id=trip_id,
            driver_id=driver_id,
            now=now,
            time_scale=time_scale,
            metered_until=plausible_end,
            timed_out=TripTimeout.ride_overrun,
        )
    except InvalidTransition:
        # The driver completed it between the read and the update: their ending stands.
        await session.rollback()
        return None
