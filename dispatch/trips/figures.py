"""Figures of the whole city for people, not apps: the day's trips, pickup waits, and the live
operations map (every connected driver with their state, open requests, the last offers).

Read-only aggregates; no rider's identity or trip detail beyond points on a map leaves here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from geoalchemy2 import Geometry
from sqlalchemy import cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from coop import paging
from dispatch.locations.models import DriverPosition
from dispatch.trips.models import Offer, Trip, TripStatus
from dispatch.trips.rules import was_ridden

ON_THE_WAY = (TripStatus.assigned, TripStatus.arrived)
OPEN_DRIVER_STATES = (TripStatus.assigned, TripStatus.arrived, TripStatus.in_progress)


@dataclass(frozen=True)
class DayFigures:
    drivers_online: int
    trips_requested: int
    trips_completed: int
    median_pickup_wait_s: int | None  # request to the driver's arrival at the pickup


async def drivers_online(*, session: AsyncSession, now: datetime, grace_s: float) -> int:
    """Drivers taking trips now: available, or on a trip, and heard from within the grace."""
    seen_since = now - timedelta(seconds=grace_s)
    busy = select(Trip.driver_id).where(Trip.status.in_(OPEN_DRIVER_STATES))
    count = await session.scalar(
        select(func.count())
        .select_from(DriverPosition)
        .where(
            DriverPosition.last_seen_at >= seen_since,
            DriverPosition.available | DriverPosition.driver_id.in_(busy),
        )
    )
    return int(count or 0)


async def day_figures(
    *, session: AsyncSession, since: datetime, now: datetime, grace_s: float
) -> DayFigures:
    """Trips requested and completed since `since` (the start of the local day), and the median
    wait from request to the driver's arrival among trips whose driver arrived since then."""
    wait_s = func.extract("epoch", Trip.arrived_at - Trip.requested_at)
    row = (
        await session.execute(
            select(
                func.count().filter(Trip.requested_at >= since),
                func.count().filter(was_ridden(), Trip.ended_at >= since),
                func.percentile_cont(0.5).within_group(wait_s).filter(Trip.arrived_at >= since),
            ).where((Trip.requested_at >= since) | (Trip.ended_at >= since))
        )
    ).one()
    median = None if row[2] is None else round(float(row[2]))
    return DayFigures(
        drivers_online=await drivers_online(session=session, now=now, grace_s=grace_s),
        trips_requested=int(row[0]),
        trips_completed=int(row[1]),
        median_pickup_wait_s=median,
    )


@dataclass(frozen=True)
class MapSnapshot:
    """The operations map at one moment. Drivers are `[lat, lon, state]` with state 0 available,
    1 on the way to a pickup, 2 on a trip, 3 connected but not taking trips."""

    drivers: list[tuple[float, float, int]]
    requests: list[tuple[float, float]]
    # Offers made since the previous snapshot: driver position -> pickup, and the pickup ETA.
    offers: list[tuple[float, float, float, float, int]]
    last_offer_at: datetime | None


async def map_snapshot(
    *, session: AsyncSession, now: datetime, grace_s: float, offers_since: datetime
) -> MapSnapshot:
    seen_since = now - timedelta(seconds=grace_s)
    position = cast(DriverPosition.position, Geometry)
    rows = await session.execute(
        select(
            func.ST_Y(position),
            func.ST_X(position),
            DriverPosition.available,
            Trip.status,
        )
        .outerjoin(
            Trip,
            (Trip.driver_id == DriverPosition.driver_id) & Trip.status.in_(OPEN_DRIVER_STATES),
        )
        .where(DriverPosition.last_seen_at >= seen_since, DriverPosition.position.is_not(None))
    )
    drivers: list[tuple[float, float, int]] = []
    for lat, lon, available, status in rows:
        if status is TripStatus.in_progress:
            state = 2
        elif status in ON_THE_WAY:
            state = 1
        else:
            state = 0 if available else 3
        drivers.append((round(float(lat), 5), round(float(lon), 5), state))
    pickup = cast(Trip.pickup, Geometry)
    requests = [
        (round(float(lat), 5), round(float(lon), 5))
        for lat, lon in await session.execute(
            select(func.ST_Y(pickup), func.ST_X(pickup)).where(Trip.status == TripStatus.requested)
        )
    ]
    offer_rows = await session.execute(
        select(
            func.ST_Y(position),
            func.ST_X(position),
            func.ST_Y(pickup),
            func.ST_X(pickup),
            Offer.pickup_eta_s,
            Offer.created_at,
        )
        .select_from(Offer)
        .join(Trip, Trip.id == Offer.trip_id)
        .join(DriverPosition, DriverPosition.driver_id == Offer.driver_id)
        .where(Offer.created_at > offers_since, DriverPosition.position.is_not(None))
        .order_by(Offer.created_at)
        .limit(2000)
    )
    offers = []
    last_offer_at = None
    for dlat, dlon, plat, plon, eta, created_at in offer_rows:
        offers.append(
            (
                round(float(dlat), 5),
                round(float(dlon), 5),
                round(float(plat), 5),
                round(float(plon), 5),
                int(eta),
            )
        )
        last_offer_at = created_at
    return MapSnapshot(
        drivers=drivers, requests=requests, offers=offers, last_offer_at=last_offer_at
    )


RIDER_TRIPS_ORDER = ((Trip.requested_at, True), (Trip.id, True))


async def trips_of_rider(
    *,
    session: AsyncSession,
    rider_id: uuid.UUID,
    limit: int = 50,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[Trip]:
    """A rider's own trips, newest first (their receipts): at most `limit`, those after the
    key `after` (`rider_trip_key` of the last one of the page before)."""
    query = (
        select(Trip)
        .where(Trip.rider_id == rider_id)
        .order_by(Trip.requested_at.desc(), Trip.id.desc())
        .limit(limit)
    )
    if after is not None:
        query = query.where(paging.after_key(RIDER_TRIPS_ORDER, after))
    return list(await session.scalars(query))


def rider_trip_key(trip: Trip) -> tuple[datetime, uuid.UUID]:
    return (trip.requested_at, trip.id)
