"""Who could take which request: the open requests of a region, and their candidate drivers.

Every open request of the region is considered in every batch: there is no cap on how many, so
no number of requests elsewhere keeps a request with a driver nearby from its offer. The K-nearest
search runs from whichever side is smaller in this batch (`find_all`):

- fewer open requests than present drivers (a normal city): for each request, the K nearest
  suitable drivers (`ORDER BY position <-> pickup LIMIT K` on the GiST index of the latest
  positions);
- more open requests than present drivers (a surge, or a flood of requests): for each present
  driver, the K nearest open requests it may take (`ORDER BY pickup <-> position LIMIT K` on the
  partial GiST index of the requested trips' pickups).

Either way the work is K searches per member of the smaller side, and a request whose nearest
driver it is (or which is among a driver's K nearest) is an edge of the batch. Both stop at the
agreement's `max_pickup_distance_m`. A driver is suitable when they are:

- an active member, available, and heard from within the grace period (`COOP_DRIVER_GRACE_S`);
- qualified today, with their car, as the jurisdiction's law requires
  (`drivers.qualifications.qualified`: docs/jurisdiction.md);
- not holding a trip, and not holding an open offer;
- driving a wheelchair-accessible vehicle, if the request asks for one;
- not someone who declined this trip or let its offer expire.

For each candidate it also answers how long the driver has been waiting: since the end of their
last completed trip, or since they came on duty if that is later (docs/dispatch.md).
"""

from __future__ import annotations

import functools
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import TextClause, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.terms import DispatchTerms
from coop.db import sql_literal
from dispatch.matching import costs
from dispatch.states import (
    CANCELLED_SQL,
    COMPLETED_SQL,
    DRIVER_OPEN_LIST,
    OFFER_OPEN_SQL,
    OFFER_REFUSED_LIST,
    WAITING_SQL,
)
from dispatch.trips.models import Offer, Trip
from drivers.models import DriverStatus

_ACTIVE_DRIVER_SQL = sql_literal(DriverStatus.active)

Side = Literal["requests", "drivers"]

# Which driver can take which request, said once for both directions of the search (and the
# count of present drivers). `p` is the driver's latest position, `v` their vehicle, `t` the
# request. What concerns the driver alone (`_DRIVER_FREE`) sits where it filters drivers before
# any request is looked at; what concerns the pair (`_DRIVER_FITS`) sits next to the K-nearest
# search. The rules in words are this module's docstring.
_PRESENT = "p.available AND p.last_seen_at > :present_after"
_ACTIVE_WITH_VEHICLE = f"""
    JOIN driver d ON d.id = p.driver_id AND d.status = {_ACTIVE_DRIVER_SQL}
    JOIN driver_vehicle v ON v.driver_id = p.driver_id
    LEFT JOIN driver_qualification dq ON dq.driver_id = p.driver_id
"""
# The law's qualification of a driver and their car today, over the aliases above (`dq`, `v`).
QUALIFIED_ALIASES = {"qualification": "dq", "vehicle": "v"}


def holds_no_trip(driver_id: str) -> str:
    """SQL: the driver `driver_id` (an SQL expression) holds no open trip."""
    return f"""NOT EXISTS (
        SELECT 1 FROM trip o WHERE o.driver_id = {driver_id} AND o.status IN {DRIVER_OPEN_LIST}
    )"""


_DRIVER_FREE = f"""
    {_PRESENT}
    AND {{qualified}}
    AND p.position IS NOT NULL
    AND {holds_no_trip("p.driver_id")}
    AND NOT EXISTS (
        SELECT 1 FROM trip_offer q WHERE q.driver_id = p.driver_id AND q.status = {OFFER_OPEN_SQL}
    )
"""
_DRIVER_FITS = f"""
    (NOT t.wheelchair_accessible OR v.wheelchair_accessible)
    AND NOT EXISTS (
        SELECT 1 FROM trip_offer e
        WHERE e.trip_id = t.id AND e.driver_id = p.driver_id AND e.status IN {OFFER_REFUSED_LIST}
    )
"""

# What the driver earned in their current shift (docs/dispatch.md, "Earnings this shift"): the
# driver's part of each trip completed since the shift began, and the cancellation fees riders
# paid them (all theirs), read through the index of trips by driver and end.
_SHIFT_EARNINGS = f"""
    LEFT JOIN LATERAL (
        SELECT COALESCE(sum(COALESCE(x.driver_earnings, 0) + COALESCE(x.cancellation_fee, 0)), 0)
                   AS earned
        FROM trip x
        WHERE x.driver_id = p.driver_id AND x.ended_at >= p.shift_started_at
          AND x.status IN ({COMPLETED_SQL}, {CANCELLED_SQL})
    ) shift ON true
"""
_SHIFT_COLUMNS = "shift.earned AS shift_earnings, p.shift_online_s AS shift_online_s"

# The reference of the earnings credit: the median shift earnings per online hour of the drivers
# available and present who have been online long enough for a rate to mean something.
# Hand-written: an ordered-set aggregate over the LATERAL shift earnings the searches share.
_REFERENCE_RATE = text(
    f"""
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY shift.earned * 3600 / p.shift_online_s)
    FROM location_driver_position p
    {_SHIFT_EARNINGS}
    WHERE {_PRESENT} AND p.shift_online_s >= :min_online_s
    """
)

# A request's quote as a number (NULL if it has none): the fare scaling of the earnings credit.
_QUOTE_TOTAL = "CAST(t.quote ->> 'total' AS numeric)"

# The fare scaling's reference: the median quote of the region's requests of the last hour.
_REFERENCE_FARE = text(
    f"""
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {_QUOTE_TOTAL})
    FROM trip t
    WHERE t.region = :region AND t.requested_at > :since AND t.requested_at <= :now
      AND t.quote ? 'total'
    """
)
# How far back the reference fare looks.
REFERENCE_FARE_WINDOW = timedelta(hours=1)

# Hand-written, as the candidate searches below: they share the named fragments above.
_PRESENT_DRIVERS = text(
    f"""
    SELECT count(*)
    FROM location_driver_position p
    WHERE {_PRESENT} AND p.position IS NOT NULL
    """
)

# From the drivers' side: each present, suitable driver's K nearest open requests. Hand-written,
# as its twin below: a LATERAL K-nearest search on the GiST index, the hot path of a batch.
_CANDIDATES_BY_DRIVER = f"""
    SELECT c.trip_id, p.driver_id, c.distance_m,
           GREATEST(COALESCE(p.available_since, p.last_seen_at), last.ended_at) AS waiting_since,
           last.ended_at AS last_trip_ended_at,
           {_SHIFT_COLUMNS}, c.requested_at,
           ST_Y(p.position::geometry), ST_X(p.position::geometry), c.pickup_lat, c.pickup_lon,
           c.fare
    FROM location_driver_position p
    {_ACTIVE_WITH_VEHICLE}
    LEFT JOIN LATERAL (
        SELECT max(x.ended_at) AS ended_at
        FROM trip x WHERE x.driver_id = p.driver_id AND x.status = {COMPLETED_SQL}
    ) last ON true
    {_SHIFT_EARNINGS}
    CROSS JOIN LATERAL (
        SELECT t.id AS trip_id, ST_Distance(t.pickup, p.position) AS distance_m,
               t.requested_at,
               ST_Y(t.pickup::geometry) AS pickup_lat, ST_X(t.pickup::geometry) AS pickup_lon,
               {_QUOTE_TOTAL} AS fare
        FROM trip t
        WHERE t.status = {WAITING_SQL}
          AND t.region = :region
          AND t.matching_deadline_at > :now
          AND ST_DWithin(t.pickup, p.position, :max_distance_m)
          AND {_DRIVER_FITS}
          AND NOT EXISTS (
              SELECT 1 FROM trip_offer o WHERE o.trip_id = t.id AND o.status = {OFFER_OPEN_SQL}
          )
        -- Distance alone, as in the other direction: the index is read nearest-first.
        ORDER BY t.pickup <-> p.position
        LIMIT :k
    ) c
    WHERE {_DRIVER_FREE}
    ORDER BY c.trip_id, c.distance_m, p.driver_id
    """

# From the requests' side: each open request's K nearest suitable drivers (hand-written: LATERAL
# K-nearest on the GiST index of the latest positions).
_CANDIDATES = f"""
    SELECT t.id, c.driver_id, c.distance_m, c.waiting_since, c.last_trip_ended_at,
           c.shift_earnings, c.shift_online_s, t.requested_at,
           c.driver_lat, c.driver_lon, ST_Y(t.pickup::geometry), ST_X(t.pickup::geometry),
           {_QUOTE_TOTAL}
    FROM trip t
    CROSS JOIN LATERAL (
        SELECT p.driver_id,
               ST_Distance(p.position, t.pickup) AS distance_m,
               GREATEST(COALESCE(p.available_since, p.last_seen_at), last.ended_at)
                   AS waiting_since,
               last.ended_at AS last_trip_ended_at,
               {_SHIFT_COLUMNS},
               ST_Y(p.position::geometry) AS driver_lat, ST_X(p.position::geometry) AS driver_lon
        FROM location_driver_position p
        {_ACTIVE_WITH_VEHICLE}
        LEFT JOIN LATERAL (
            SELECT max(x.ended_at) AS ended_at
            FROM trip x WHERE x.driver_id = p.driver_id AND x.status = {COMPLETED_SQL}
        ) last ON true
        {_SHIFT_EARNINGS}
        WHERE {_DRIVER_FREE}
          AND ST_DWithin(p.position, t.pickup, :max_distance_m)
          AND {_DRIVER_FITS}
        -- Distance alone, no tie-break: a second sort key keeps PostgreSQL from reading the
        -- GiST index nearest-first (180 ms -> 3.6 ms a batch at 10,000 drivers).
        ORDER BY p.position <-> t.pickup
        LIMIT :k
    ) c
    WHERE t.id = ANY(CAST(:trip_ids AS uuid[])) AND t.status = {WAITING_SQL}
    ORDER BY t.id, c.distance_m, c.driver_id
    """


@functools.lru_cache(maxsize=8)
def _statement(template: str, qualified: str) -> TextClause:
    """A candidate search with the day's qualification rule in it (one a day per jurisdiction)."""
    return text(template.replace("{qualified}", qualified))


@dataclass(frozen=True)
class Candidate:
    trip_id: uuid.UUID
    driver_id: uuid.UUID
    distance_m: float
    # Seconds the driver has waited for a trip, and whether that wait began at a trip's end
    # (rather than when they came on duty).
    idle_s: float
    since_last_trip: bool
    # The driver's shift so far (docs/dispatch.md, "Earnings this shift"): what they earned and
    # how long they were online, for the earnings credit.
    shift_earnings: float = 0.0
    shift_online_s: float = 0.0
    # Seconds the request has waited since it was made (the rider's credit).
    request_wait_s: float = 0.0
    # Where the driver is and where the pickup is (the travel-time model's cells); NaN where
    # unknown (the benchmarks' synthetic candidates), which the model prices at the city's pace.
    driver_lat: float = math.nan
    driver_lon: float = math.nan
    pickup_lat: float = math.nan
    pickup_lon: float = math.nan
    # The request's quote (its total), for the earnings credit's fare scaling; NaN: unknown.
    fare: float = math.nan


async def open_requests(*, session: AsyncSession, region: str, now: datetime) -> list[uuid.UUID]:
    """The region's requests waiting for an offer (every one), oldest first."""
    # Statuses as literals, as in the hand-written statements: the partial indexes on them apply.
    open_offer = (
        select(Offer.id)
        .where(Offer.trip_id == Trip.id, Offer.status == literal_column(OFFER_OPEN_SQL))
        .exists()
    )
    rows = await session.scalars(
        select(Trip.id)
        .where(
            Trip.region == region,
            Trip.status == literal_column(WAITING_SQL),
            Trip.matching_deadline_at > now,
            ~open_offer,
        )
        .order_by(Trip.requested_at, Trip.id)
    )
    return list(rows)


async def present_drivers(*, session: AsyncSession, present_after: datetime) -> int:
    """How many drivers are available and heard from (an upper bound of the offerable ones)."""
    return int(await session.scalar(_PRESENT_DRIVERS, {"present_after": present_after}) or 0)


@dataclass(frozen=True)
class Search:
    """What `find_all` found: the open requests, the side it searched from, the edges."""

    requests: int
    drivers: int
    side: Side
    candidates: list[Candidate]


async def find_all(
    *,
    session: AsyncSession,
    region: str,
    now: datetime,
    present_after: datetime,
    max_distance_m: float,
    k: int | None,
    qualified: str,
    side: Side | None = None,
    max_requests: int | None = None,
) -> Search:
    """Candidates for every open request of the region, searched from the smaller side (or from
    `side`, which tests and the benchmark set to compare the two). With `max_requests`, no
    search at all when more requests than that are open (an early batch leaves them).
    `qualified` is the law's qualification rule of the day as SQL over the search's aliases
    (`drivers.qualifications.qualified_sql` with `QUALIFIED_ALIASES`)."""
    trip_ids = await open_requests(session=session, region=region, now=now)
    if not trip_ids or (max_requests is not None and len(trip_ids) > max_requests):
        return Search(requests=len(trip_ids), drivers=0, side="requests", candidates=[])
    drivers = await present_drivers(session=session, present_after=present_after)
    if drivers == 0:
        return Search(requests=len(trip_ids), drivers=0, side="requests", candidates=[])
    if side == "requests" or (side is None and len(trip_ids) <= drivers):
        candidates = await find(
            session=session,
            trip_ids=trip_ids,
            now=now,
            present_after=present_after,
            max_distance_m=max_distance_m,
            k=k,
            qualified=qualified,
        )
        return Search(len(trip_ids), drivers, "requests", candidates)
    candidates = await find_by_driver(
        session=session,
        region=region,
        now=now,
        present_after=present_after,
        max_distance_m=max_distance_m,
        k=k,
        qualified=qualified,
    )
    return Search(len(trip_ids), drivers, "drivers", candidates)


async def find(
    *,
    session: AsyncSession,
    trip_ids: list[uuid.UUID],
    now: datetime,
    present_after: datetime,
    max_distance_m: float,
    k: int | None,
    qualified: str,
) -> list[Candidate]:
    """Up to `k` candidate drivers for each request, nearest first."""
    if not trip_ids:
        return []
    rows = await session.execute(
        _statement(_CANDIDATES, qualified),
        {
            "trip_ids": trip_ids,
            "present_after": present_after,
            "max_distance_m": max_distance_m,
            "k": k,
        },
    )
    return _candidates(rows, now)


async def find_by_driver(
    *,
    session: AsyncSession,
    region: str,
    now: datetime,
    present_after: datetime,
    max_distance_m: float,
    k: int | None,
    qualified: str,
) -> list[Candidate]:
    """Up to `k` open requests for each present suitable driver, nearest first."""
    rows = await session.execute(
        _statement(_CANDIDATES_BY_DRIVER, qualified),
        {
            "region": region,
            "now": now,
            "present_after": present_after,
            "max_distance_m": max_distance_m,
            "k": k,
        },
    )
    return _candidates(rows, now)


def _candidates(rows: Any, now: datetime) -> list[Candidate]:
    candidates = []
    for (
        trip_id,
        driver_id,
        distance_m,
        waiting_since,
        last_trip_ended_at,
        shift_earnings,
        shift_online_s,
        requested_at,
        driver_lat,
        driver_lon,
        pickup_lat,
        pickup_lon,
        fare,
    ) in rows:
        candidates.append(
            Candidate(
                trip_id=trip_id,
                driver_id=driver_id,
                distance_m=float(distance_m),
                idle_s=max(0.0, (now - waiting_since).total_seconds()),
                since_last_trip=last_trip_ended_at is not None
                and last_trip_ended_at >= waiting_since,
                shift_earnings=float(shift_earnings),
                shift_online_s=float(shift_online_s),
                request_wait_s=max(0.0, (now - requested_at).total_seconds()),
                driver_lat=float(driver_lat),
                driver_lon=float(driver_lon),
                pickup_lat=float(pickup_lat),
                pickup_lon=float(pickup_lon),
                fare=math.nan if fare is None else float(fare),
            )
        )
    return candidates


async def reference_rate_per_h(*, session: AsyncSession, present_after: datetime) -> float | None:
    """The median shift earnings per online hour of the drivers available and present who have
    been online at least `costs.REFERENCE_MIN_ONLINE_S` (None when there are none)."""
    value = await session.scalar(
        _REFERENCE_RATE,
        {"present_after": present_after, "min_online_s": costs.REFERENCE_MIN_ONLINE_S},
    )
    return None if value is None else float(value)


async def reference_fare(*, session: AsyncSession, region: str, now: datetime) -> float | None:
    """The median quote of the region's requests of the last `REFERENCE_FARE_WINDOW` (None when
    there are none: the fare scaling is then 1)."""
    value = await session.scalar(
        _REFERENCE_FARE, {"region": region, "since": now - REFERENCE_FARE_WINDOW, "now": now}
    )
    return None if value is None else float(value)


def candidates_per_request(terms: DispatchTerms, setting_k: int) -> int | None:
    """The K of the candidate search: the agreement's `candidates_per_request` when it states
    one (0: None, every suitable free driver within the radius), else the service's setting."""
    if terms.candidates_per_request is None:
        return setting_k
    return terms.candidates_per_request or None
