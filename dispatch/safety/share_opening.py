"""Opening a shared-trip link, for every adapter (the API's routes and the `/t` page): the
per-address limits, the one `404` for whatever does not open, and the sharer told of the first
opening (a `share_opened` frame on their socket, after the commit that recorded it). And the
link a party's auto-share policy makes at assignment, handed to their app."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from coop import pubsub
from coop.ratelimit import RateLimits
from coop.redis_client import Redis
from dispatch.safety import share
from dispatch.safety.share_models import Sharer, TripShare
from dispatch.safety.share_views import ShareOpenedFrame, TripSharedFrame
from dispatch.trips.models import Trip

logger = logging.getLogger("coop.safety.share")


async def open_link(
    *,
    session: AsyncSession,
    redis: Redis,
    limits: RateLimits,
    client: str,
    token: str,
    now: datetime,
) -> tuple[TripShare, Trip]:
    """The live link of `token` and its trip, for a visitor at address `client` (`429` past
    the address's limits, `404 share_not_found` for anything that does not open)."""
    await limits.check_share(client)
    try:
        found, trip = await share.resolve(session=session, token=token, now=now)
    except share.ShareNotFound:
        await limits.note_share_miss(client)
        raise
    if await share.mark_opened(session=session, share=found, now=now):
        await _tell_sharer(redis, found, trip, now)
    return found, trip


async def _tell_sharer(redis: Redis, opened: TripShare, trip: Trip, now: datetime) -> None:
    frame = ShareOpenedFrame(
        type="share_opened", trip_id=trip.id, share_id=opened.id, opened_at=now
    )
    if opened.sharer is Sharer.rider:
        channel = pubsub.rider_channel(trip.rider_id)
    elif trip.driver_id is not None:
        channel = pubsub.driver_channel(trip.driver_id)
    else:  # a driver's link always has its driver; nothing to tell otherwise
        return
    try:
        await pubsub.publish(redis, channel, frame)
    except Exception:
        # Telling is best effort: the opening is recorded (`first_opened_at`) either way.
        logger.warning("could not tell the sharer of trip %s", trip.id, exc_info=True)


async def share_at_assignment(
    *,
    session: AsyncSession,
    redis: Redis,
    trip_id: uuid.UUID,
    account_id: uuid.UUID,
    policy: share.AutoSharePolicy,
    night_starts: str,
    night_ends: str,
    zone: ZoneInfo,
    base_url: str,
    now: datetime,
    sharer: Sharer = Sharer.rider,
) -> share.NewShare | None:
    """Once a driver accepted the trip: the link of `sharer` (the rider, or the driver for
    their own safety; `account_id` is theirs) if their auto-share policy applies now
    (`share.auto_share`), committed, then sent to their socket as a `trip_shared` frame for
    their app to pass to their contacts. None when the policy does not apply."""
    made = await share.auto_share(
        session=session,
        trip_id=trip_id,
        policy=policy,
        night_starts=night_starts,
        night_ends=night_ends,
        zone=zone,
        now=now,
        sharer=sharer,
    )
    if made is None:
        return None
    frame = TripSharedFrame(
        type="trip_shared",
        trip_id=trip_id,
        share_id=made.share.id,
        token=made.token,
        url=base_url.rstrip("/") + f"/t/{made.token}",
        expires_at=made.expires_at,
        automatic=True,
    )
    channel = (
        pubsub.rider_channel(account_id)
        if sharer is Sharer.rider
        else pubsub.driver_channel(account_id)
    )
    try:
        await pubsub.publish(redis, channel, frame)
    except Exception:
        # The link exists either way; the sharer can make another by hand if this one is lost.
        logger.warning(
            "could not hand trip %s's automatic link to its %s",
            trip_id,
            sharer.value,
            exc_info=True,
        )
    return made
