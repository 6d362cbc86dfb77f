"""The trips domain's errors, each with its stable problem `type`."""

from __future__ import annotations

from coop.errors import (
    Conflict,
    Forbidden,
    NotFound,
    UnprocessableEntity,
)


class TripNotFound(NotFound):
    type = "trip_not_found"
    title = "No such trip"


class NotYourTrip(Forbidden):
    type = "not_your_trip"
    title = "This trip is not yours"


class OfferNotFound(NotFound):
    type = "offer_not_found"
    title = "No such offer"


class NotYourOffer(Forbidden):
    type = "not_your_offer"
    title = "This offer was made to another driver"


class OfferExpired(Conflict):
    type = "offer_expired"
    title = "The offer is no longer open"


class DriverBusy(Conflict):
    type = "driver_busy"
    title = "The driver already holds an open trip"


class RiderHasOpenTrip(Conflict):
    type = "rider_has_open_trip"
    title = "The rider already has a trip under way"


class IdempotencyKeyReused(UnprocessableEntity):
    type = "idempotency_key_reused"
    title = "This Idempotency-Key was used for another request"


class BadIdempotencyKey(UnprocessableEntity):
    type = "bad_idempotency_key"
    title = "The Idempotency-Key header is not valid"


class DriverNotActive(Conflict):
    type = "driver_not_active"
    title = "Only an active member can take trips"


class FareReviewNotFound(NotFound):
    type = "fare_review_not_found"
    title = "No such trip on the fare review list"


class FareReviewClosed(Conflict):
    type = "fare_review_closed"
    title = "This fare was reviewed already"


class NotAtPickup(Conflict):
    type = "not_at_pickup"
    title = "The driver's last position is not at the pickup"
