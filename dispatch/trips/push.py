"""Frames about trips and offers, published to the sockets of the people concerned.

Published after the commit that made the change, so a frame never announces what did not
happen. A push lost to a Redis hiccup is repaired when the client reconnects (it gets its open
trip at once), so a failed publish is logged, never raised.
"""

from __future__ import annotations

import logging
import uuid

from coop import pubsub
from coop.auth import Role
from coop.frames import Frame
from coop.push.message import Urgency
from coop.push.sender import Push, notify
from coop.redis_client import Redis
from dispatch.locations.geometry import position_of
from dispatch.trips.frames import OfferFrame, OfferWithdrawnFrame, TripFrame
from dispatch.trips.models import Offer, Trip
from dispatch.trips.schemas import TripOut
from dispatch.trips.views import TripViews

logger = logging.getLogger("coop.trips")


def trip_frame(trip: TripOut) -> TripFrame:
    return TripFrame(type="trip", trip=trip)


def offer_frame(offer: Offer, trip: Trip) -> OfferFrame:
    return OfferFrame(
        type="offer",
        offer_id=offer.id,
        trip_id=trip.id,
        pickup=position_of(trip.pickup),
        dropoff=position_of(trip.dropoff),
        pickup_distance_m=offer.pickup_distance_m,
        pickup_eta_s=offer.pickup_eta_s,
        fare_estimate=trip.quote["total"],
        currency=trip.currency,
        expires_at=offer.expires_at,
        why=offer.why,
        wheelchair_accessible=trip.wheelchair_accessible,
    )


def offer_withdrawn_frame(offer_id: uuid.UUID, reason: str) -> OfferWithdrawnFrame:
    return OfferWithdrawnFrame(type="offer_withdrawn", offer_id=offer_id, reason=reason)


async def _publish(redis: Redis, channel: str, frame: Frame) -> int | None:
    """Answers how many workers hold a socket of the channel; None when Redis did not answer."""
    try:
        return await pubsub.publish(redis, channel, frame)
    except Exception:
        logger.warning("could not publish a %s frame on %s", frame.type, channel, exc_info=True)
        return None


# The changes a rider is pushed when no socket of theirs heard the frame: those they act on
# (go out to the car, read the fare, book again). The others wait for the app's next opening.
RIDER_PUSHED = {"arrived": 600, "completed": 3600, "cancelled": 900}


def rider_push(trip: TripOut) -> Push | None:
    """The push of a trip change to its rider, or None for a change not worth one."""
    ttl_s = RIDER_PUSHED.get(trip.status)
    if ttl_s is None or trip.rider_id is None:
        return None
    if trip.status == "cancelled" and trip.cancelled_by != "driver":
        return None  # the rider's own cancellation: they know
    return Push(
        role=Role.rider,
        subject_id=trip.rider_id,
        kind="trip",
        data={"kind": "trip", "trip_id": str(trip.id), "status": trip.status},
        ttl_s=ttl_s,
        urgency=Urgency.normal,
        topic=f"trip{trip.id.hex[:24]}",
    )


async def trip_changed(redis: Redis, trip: TripViews) -> None:
    """Tells the rider and the driver (if any) the trip's new state, each their own view; a
    rider no socket heard it is pushed the changes they act on (`RIDER_PUSHED`)."""
    assert trip.rider.rider_id is not None
    heard = await _publish(redis, pubsub.rider_channel(trip.rider.rider_id), trip_frame(trip.rider))
    if heard == 0:
        push = rider_push(trip.rider)
        if push is not None:
            notify(redis, push)
    if trip.driver.driver_id is not None:
        await _publish(redis, pubsub.driver_channel(trip.driver.driver_id), trip_frame(trip.driver))


async def offered(redis: Redis, offer: Offer, trip: Trip) -> None:
    await _publish(redis, pubsub.driver_channel(offer.driver_id), offer_frame(offer, trip))


async def offered_all(redis: Redis, made: list[tuple[Offer, Trip]]) -> set[uuid.UUID]:
    """A batch's offers to their drivers, in one round trip to Redis. Answers the offers no
    socket heard (their drivers have none open on any worker: a push must carry them); when
    Redis did not answer, none (whether a socket heard them is unknown)."""
    try:
        receivers = await pubsub.publish_many(
            redis,
            [
                (pubsub.driver_channel(offer.driver_id), offer_frame(offer, trip))
                for offer, trip in made
            ],
        )
    except Exception:
        logger.warning("could not publish %d offer frames", len(made), exc_info=True)
        return set()
    return {offer.id for (offer, _), count in zip(made, receivers, strict=True) if count == 0}


async def offer_withdrawn(
    redis: Redis, *, driver_id: uuid.UUID, offer_id: uuid.UUID, reason: str
) -> None:
    await _publish(redis, pubsub.driver_channel(driver_id), offer_withdrawn_frame(offer_id, reason))
