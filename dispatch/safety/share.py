"""Share my trip (docs/safety.md): a party to a trip makes a link others can follow it with.

A link is a random token of `TOKEN_BYTES` bytes from `secrets` (144 bits), shown once to its
maker and stored only as its SHA-256, so a reader of the database cannot open anyone's page. It
works while its trip is open and for `AFTER_END` once the trip is over, unless its maker revokes
it. Each party may keep `LIVE_PER_PARTY` live links per trip and make `MADE_PER_PARTY` in all
(so revoking and making again cannot flood a trip with links). What a link shows is
`share_views.SharedTripView`, an allow-list.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from coop.auth import Principal, hash_token
from coop.errors import Conflict, NotFound
from dispatch.safety.share_models import Sharer, TripShare
from dispatch.states import TERMINAL, TripStatus
from dispatch.trips.exceptions import TripNotFound
from dispatch.trips.models import CancelledBy, Trip
from dispatch.trips.queries import party_to

TOKEN_BYTES = 18  # 144 bits; 24 URL-safe characters, short enough for a text message
AFTER_END = timedelta(minutes=30)
LIVE_PER_PARTY = 5
MADE_PER_PARTY = 10
# The longest token the routes look up; anything longer is refused before hashing.
TOKEN_MAX_CHARS = 128

AutoSharePolicy = Literal["always", "night", "never"]


class ShareNotFound(NotFound):
    """The one answer for a link that never existed, was revoked or has expired: no oracle."""

    type = "share_not_found"
    title = "No such shared trip"


class TripOver(Conflict):
    type = "trip_over"
    title = "The trip is over: there is nothing left to share"


class ShareLimitReached(Conflict):
    type = "share_limit_reached"
    title = "Too many links for this trip"


@dataclass(frozen=True)
class NewShare:
    """A link just made: its token is here and nowhere else (the table keeps its hash)."""

    share: TripShare
    token: str
    expires_at: datetime | None


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def expires_after(status: TripStatus, ended_at: datetime | None) -> datetime | None:
    """When a link to a trip stops working: `AFTER_END` after the trip is over; None while it
    is open (the end is not known yet)."""
    if status in TERMINAL and ended_at is not None:
        return ended_at + AFTER_END
    return None


def expires_at(trip: Trip) -> datetime | None:
    return expires_after(trip.status, trip.ended_at)


def is_live(share: TripShare, trip: Trip, now: datetime) -> bool:
    if share.revoked_at is not None:
        return False
    until = expires_at(trip)
    return until is None or now < until


def _sharer(party: CancelledBy) -> Sharer:
    return Sharer.rider if party is CancelledBy.rider else Sharer.driver


async def _locked_trip(session: AsyncSession, trip_id: uuid.UUID) -> Trip:
    """The trip, its row locked: two links made at once are counted one after the other."""
    trip = await session.scalar(
        select(Trip)
        .where(Trip.id == trip_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if trip is None:
        raise TripNotFound(f"No trip {trip_id}")
    return trip


async def _make(
    session: AsyncSession, trip: Trip, sharer: Sharer, *, now: datetime, automatic: bool
) -> NewShare:
    if trip.status in TERMINAL:
        raise TripOver(f"The trip is {trip.status.value}: links are made while it is open")
    made, live = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(TripShare.revoked_at.is_(None)),
            ).where(TripShare.trip_id == trip.id, TripShare.sharer == sharer)
        )
    ).one()
    if live >= LIVE_PER_PARTY:
        raise ShareLimitReached(
            f"At most {LIVE_PER_PARTY} live links per trip; revoke one first",
            live=live,
            made=made,
        )
    if made >= MADE_PER_PARTY:
        raise ShareLimitReached(f"At most {MADE_PER_PARTY} links per trip", live=live, made=made)
    token = new_token()
    share = TripShare(
        trip_id=trip.id,
        token_hash=hash_token(token),
        sharer=sharer,
        automatic=automatic,
        created_at=now,
    )
    session.add(share)
    await session.flush()
    return NewShare(share=share, token=token, expires_at=expires_at(trip))


async def create(
    *, session: AsyncSession, trip_id: uuid.UUID, principal: Principal, now: datetime
) -> NewShare:
    """A new link to the trip, made by its rider or its driver while it is open (`403
    not_your_trip` for anyone else, `409 trip_over` once it is over, `409
    share_limit_reached` past the per-trip limits)."""
    trip = await _locked_trip(session, trip_id)
    party = party_to(trip, principal, to="share it")
    made = await _make(session, trip, _sharer(party), now=now, automatic=False)
    await session.commit()
    return made


async def revoke(
    *,
    session: AsyncSession,
    trip_id: uuid.UUID,
    token: str,
    principal: Principal,
    now: datetime,
) -> None:
    """Ends a link now. Only its maker may: the rider cannot end the link the driver keeps for
    their own safety, nor the driver the rider's. Revoking twice is revoking once; a token that
    is not one of the caller's links of this trip is `404 share_not_found`."""
    trip = await session.get(Trip, trip_id)
    if trip is None:
        raise TripNotFound(f"No trip {trip_id}")
    sharer = _sharer(party_to(trip, principal, to="revoke its links"))
    if len(token) > TOKEN_MAX_CHARS:
        raise ShareNotFound()
    share = await session.scalar(
        select(TripShare).where(
            TripShare.token_hash == hash_token(token),
            TripShare.trip_id == trip.id,
            TripShare.sharer == sharer,
        )
    )
    if share is None:
        raise ShareNotFound()
    await session.execute(
        update(TripShare)
        .where(TripShare.id == share.id, TripShare.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.commit()


async def resolve(*, session: AsyncSession, token: str, now: datetime) -> tuple[TripShare, Trip]:
    """The live link of `token` and its trip; `404 share_not_found` alike for a token that
    never existed, a revoked link and an expired one."""
    if len(token) > TOKEN_MAX_CHARS:
        raise ShareNotFound()
    row = (
        await session.execute(
            select(TripShare, Trip)
            .join(Trip, Trip.id == TripShare.trip_id)
            .where(TripShare.token_hash == hash_token(token))
            .execution_options(populate_existing=True)
        )
    ).one_or_none()
    if row is None or not is_live(row[0], row[1], now):
        raise ShareNotFound()
    return row[0], row[1]


async def mark_opened(*, session: AsyncSession, share: TripShare, now: datetime) -> bool:
    """Records the link's first opening; True for exactly one caller however many open it at
    once (a conditional UPDATE), the one that tells the sharer."""
    opened = await session.scalar(
        update(TripShare)
        .where(TripShare.id == share.id, TripShare.first_opened_at.is_(None))
        .values(first_opened_at=now)
        .returning(TripShare.id)
    )
    await session.commit()
    return opened is not None


def at_night(now: datetime, *, starts: str, ends: str, zone: ZoneInfo) -> bool:
    """Whether `now` falls in the agreement's night (`HH:MM` to `HH:MM` in `zone`, across
    midnight when it starts later than it ends)."""
    local = now.astimezone(zone).time()
    start, end = time.fromisoformat(starts), time.fromisoformat(ends)
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def policy_applies(
    policy: AutoSharePolicy, now: datetime, *, night_starts: str, night_ends: str, zone: ZoneInfo
) -> bool:
    if policy == "always":
        return True
    if policy == "night":
        return at_night(now, starts=night_starts, ends=night_ends, zone=zone)
    return False


async def auto_share(
    *,
    session: AsyncSession,
    trip_id: uuid.UUID,
    policy: AutoSharePolicy,
    night_starts: str,
    night_ends: str,
    zone: ZoneInfo,
    now: datetime,
    sharer: Sharer = Sharer.rider,
) -> NewShare | None:
    """At assignment: the `sharer`'s link (the rider's, or the driver's for their own safety),
    made by their auto-share policy (`always`, `night` in the agreement's night window, or
    `never`), or None when the policy does not apply now. The app sends it to the sharer's
    contacts; the service sends nothing itself. A party whose trip already has their automatic
    link gets no second one (an assignment seen twice)."""
    if not policy_applies(policy, now, night_starts=night_starts, night_ends=night_ends, zone=zone):
        return None
    trip = await _locked_trip(session, trip_id)
    already = await session.scalar(
        select(TripShare.id).where(
            TripShare.trip_id == trip.id,
            TripShare.sharer == sharer,
            TripShare.automatic.is_(True),
        )
    )
    if already is not None:
        return None
    made = await _make(session, trip, sharer, now=now, automatic=True)
    await session.commit()
    return made
