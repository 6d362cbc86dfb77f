"""The operators' review list of the hourly floor (docs/pay.md, "How the floor is protected"):
patterns that can mean a driver paying themselves through the floor, for a person to look at.
It never acts: listing a driver changes nothing about their trips, pay or status.

- pairs of a driver and a rider who keep meeting (REPEAT_MIN_TRIPS paying trips in the window);
- trips of a rider whose account was new (NEW_RIDER_DAYS) with the pickup where the driver
  already was (the accepted offer's `pickup_distance_m` at most AT_DRIVER_M);
- drivers whose top-up in a closed period is more than TOP_UP_FACTOR times the period's median
  top-up (zero included: while most drivers earn above the floor, any top-up is listed);
- rides the service ended for running past their plausible length (`ride_overrun`).
"""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from coop.money import round_cents
from dispatch.trips.models import Offer, OfferStatus, Trip, TripTimeout
from dispatch.trips.rules import pays_its_driver
from pay import closing
from pay.models import PayPeriod, PayStatement
from riders.models import Rider

REPEAT_MIN_TRIPS = 3
NEW_RIDER_DAYS = 7
AT_DRIVER_M = 50
TOP_UP_FACTOR = 3


@dataclass(frozen=True)
class Pair:
    driver_id: uuid.UUID
    rider_id: uuid.UUID
    trips: int
    first_ended_at: datetime
    last_ended_at: datetime


@dataclass(frozen=True)
class NewRiderAtDriver:
    trip_id: uuid.UUID
    driver_id: uuid.UUID
    rider_id: uuid.UUID
    rider_joined_at: datetime
    requested_at: datetime
    pickup_distance_m: int


@dataclass(frozen=True)
class HighTopUp:
    period_start: date
    driver_id: uuid.UUID
    top_up: Decimal
    median_top_up: Decimal
    engaged_seconds: int


@dataclass(frozen=True)
class OverrunRide:
    trip_id: uuid.UUID
    driver_id: uuid.UUID
    rider_id: uuid.UUID
    started_at: datetime
    ended_at: datetime
    quote_duration_s: int


@dataclass(frozen=True)
class ReviewList:
    since: datetime
    until: datetime
    repeated_pairs: list[Pair]
    new_riders_at_driver: list[NewRiderAtDriver]
    high_top_ups: list[HighTopUp]
    overrun_rides: list[OverrunRide]


def _paying(since: datetime, until: datetime) -> list[ColumnElement[bool]]:
    """Trips that paid their driver (what the floor counts), ended in [since, until)."""
    return [pays_its_driver(), Trip.ended_at >= since, Trip.ended_at < until]


async def review_list(*, session: AsyncSession, now: datetime, days: int) -> ReviewList:
    """The review list over the `days` before `now` (closing first, like every read of
    statements, the periods that are due: their top-ups are on it)."""
    await closing.close_due(session=session, now=now)
    since = now - timedelta(days=days)
    return ReviewList(
        since=since,
        until=now,
        repeated_pairs=await _pairs(session, since, now),
        new_riders_at_driver=await _new_riders(session, since, now),
        high_top_ups=await _top_ups(session, since, now),
        overrun_rides=await _overruns(session, since, now),
    )


async def _pairs(session: AsyncSession, since: datetime, until: datetime) -> list[Pair]:
    trips = func.count()
    rows = await session.execute(
        select(
            Trip.driver_id,
            Trip.rider_id,
            trips,
            func.min(Trip.ended_at),
            func.max(Trip.ended_at),
        )
        .where(*_paying(since, until))
        .group_by(Trip.driver_id, Trip.rider_id)
        .having(trips >= REPEAT_MIN_TRIPS)
        .order_by(trips.desc(), Trip.driver_id, Trip.rider_id)
    )
    return [
        Pair(driver_id, rider_id, count, first, last)
        for driver_id, rider_id, count, first, last in rows
        if driver_id is not None and first is not None and last is not None
    ]


async def _new_riders(
    session: AsyncSession, since: datetime, until: datetime
) -> list[NewRiderAtDriver]:
    rows = await session.execute(
        select(
            Trip.id,
            Trip.driver_id,
            Trip.rider_id,
            Rider.created_at,
            Trip.requested_at,
            Offer.pickup_distance_m,
        )
        .join(Rider, Rider.id == Trip.rider_id)
        .join(
            Offer,
            and_(
                Offer.trip_id == Trip.id,
                Offer.driver_id == Trip.driver_id,
                Offer.status == OfferStatus.accepted,
            ),
        )
        .where(
            *_paying(since, until),
            Rider.created_at > Trip.requested_at - timedelta(days=NEW_RIDER_DAYS),
            Offer.pickup_distance_m <= AT_DRIVER_M,
        )
        .order_by(Trip.ended_at, Trip.id)
    )
    return [
        NewRiderAtDriver(trip_id, driver_id, rider_id, joined_at, requested_at, distance_m)
        for trip_id, driver_id, rider_id, joined_at, requested_at, distance_m in rows
        if driver_id is not None
    ]


async def _top_ups(session: AsyncSession, since: datetime, until: datetime) -> list[HighTopUp]:
    rows = await session.execute(
        select(PayStatement)
        .join(PayPeriod, PayPeriod.start_date == PayStatement.period_start)
        .where(
            PayPeriod.closed_at.is_not(None),
            PayPeriod.ends_at > since,
            PayPeriod.ends_at <= until,
        )
        .order_by(PayStatement.period_start, PayStatement.driver_id)
    )
    by_period: dict[date, list[PayStatement]] = defaultdict(list)
    for statement in rows.scalars():
        by_period[statement.period_start].append(statement)
    listed: list[HighTopUp] = []
    for period_start, statements in by_period.items():
        median = round_cents(Decimal(statistics.median(s.top_up for s in statements)))
        listed.extend(
            HighTopUp(period_start, s.driver_id, s.top_up, median, s.engaged_seconds)
            for s in statements
            if s.top_up > 0 and s.top_up > TOP_UP_FACTOR * median
        )
    return listed


async def _overruns(session: AsyncSession, since: datetime, until: datetime) -> list[OverrunRide]:
    trips = await session.scalars(
        select(Trip)
        .where(
            Trip.timed_out == TripTimeout.ride_overrun,
            Trip.ended_at >= since,
            Trip.ended_at < until,
        )
        .order_by(Trip.ended_at, Trip.id)
    )
    listed: list[OverrunRide] = []
    for trip in trips:
        assert trip.driver_id is not None
        assert trip.started_at is not None and trip.ended_at is not None
        listed.append(
            OverrunRide(
                trip.id,
                trip.driver_id,
                trip.rider_id,
                trip.started_at,
                trip.ended_at,
                int(trip.quote["duration_s"]),
            )
        )
    return listed
