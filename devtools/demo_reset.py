"""A demo started on a data folder used before starts clean: what the previous run left open
(a request nobody took yet, a trip its simulated driver never finished) is closed before the
seeding runs, or the stale request is offered to a seeded member and the seeding waits in vain.

Each trip is closed as the service closes it, through the service's own functions, and each
closure is written to the audit log (`demo.left_open_closed`):

- a request nobody took: called off by its rider (`cancellation.cancel`: free, no driver had
  accepted), its pending offers withdrawn;
- a trip assigned or arrived: called off by its driver (a driver's cancellation costs the rider
  nothing: the driver is the one who went away);
- a ride under way: completed by the service (`moves.complete`, marked `ride_overrun` for the
  operators' review list as the sweep marks a ride left open), metered up to the last position
  the service received, so the rider pays nothing for the hours the demo was stopped.

It runs before the demo starts its service (nothing else moves these trips then); the demo
refuses to run with COOP_ENV=production, so it never closes a real co-op's trips.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop import audit
from coop.auth import Principal, Role
from coop.errors import InvalidTransition
from dispatch.locations.models import TrailPoint
from dispatch.states import RIDER_OPEN, TripStatus, TripTimeout
from dispatch.trips import cancellation, moves
from dispatch.trips.models import Trip

AUDIT_KIND = "demo.left_open_closed"
REASON = "The demo was restarted: this trip was left open by its previous run."


@dataclass
class Closed:
    """What was closed, by the status each trip was left in."""

    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def line(self) -> str:
        if not self.by_status:
            return "demo: nothing left open by a previous run"
        parts = ", ".join(f"{count} {status}" for status, count in sorted(self.by_status.items()))
        return f"demo: closed what a previous run left open ({parts})"


async def close_left_open(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    now: datetime,
    time_scale: float = 1.0,
) -> Closed:
    """Closes every open request and trip (see the module's docstring); answers the count."""
    closed = Closed()
    async with sessionmaker() as session:
        left = list(
            await session.execute(
                select(Trip.id, Trip.status).where(Trip.status.in_(RIDER_OPEN)).order_by(Trip.id)
            )
        )
        await session.commit()
        for trip_id, status in left:
            ended = await _close(session, trip_id, now, time_scale)
            if ended is None:
                continue  # it ended between the read and the close: its ending stands
            await audit.append(
                session=session,
                kind=AUDIT_KIND,
                subject=f"trip:{trip_id}",
                content={
                    "trip_id": str(trip_id),
                    "left_in": status.value,
                    "closed_as": ended.status.value,
                    "by": ended.cancelled_by.value if ended.cancelled_by else "service",
                },
                at=now,
            )
            await session.commit()
            closed.by_status[status.value] = closed.by_status.get(status.value, 0) + 1
    return closed


async def _close(
    session: AsyncSession, trip_id: uuid.UUID, now: datetime, time_scale: float
) -> Trip | None:
    trip = await session.get(Trip, trip_id, populate_existing=True)
    assert trip is not None
    try:
        if trip.status is TripStatus.in_progress:
            assert trip.driver_id is not None and trip.started_at is not None
            last_heard = await session.scalar(
                select(func.max(TrailPoint.recorded_at)).where(TrailPoint.trip_id == trip_id)
            )
            return await moves.complete(
                session=session,
                trip_id=trip_id,
                driver_id=trip.driver_id,
                now=now,
                time_scale=time_scale,
                metered_until=max(trip.started_at, last_heard or trip.started_at),
                timed_out=TripTimeout.ride_overrun,
            )
        if trip.status is TripStatus.requested or trip.driver_id is None:
            party = Principal(role=Role.rider, subject_id=trip.rider_id)
        else:
            party = Principal(role=Role.driver, subject_id=trip.driver_id)
        ended, _withdrawn = await cancellation.cancel(
            session=session, trip_id=trip_id, principal=party, reason=REASON, now=now
        )
        return ended
    except InvalidTransition:
        await session.rollback()
        return None
