"""The trips' operations under the names other packages call them by. Each lives in the module
of its concern, where the trips' own modules import it from:

- `queries`: loading a trip, who is a party to it, open trips and offers, completed trips;
- `views`: what each audience (rider, driver, operators) sees of a trip;
- `booking`: quotes and trip requests with their Idempotency-Keys;
- `offers`: accepting, declining, closing and withdrawing offers, ending unanswered requests;
- `moves`: the driver's `arrived`, `start` and `complete` (with `pickup`: where they are);
- `cancellation`: calling a trip off, and what a rider's cancellation costs.

Every status change is one conditional UPDATE; each operation commits once or not at all.
Pushing frames to sockets happens after the commit (`dispatch.trips.push`): a lost push is
repaired by the state a client gets on (re)connect.
"""

from __future__ import annotations

from dispatch.trips.offers import (
    ClosedOffer,
    expire_offers,
    expire_requests,
    mark_delivered,
    withdraw_offers_of_driver,
)
from dispatch.trips.queries import (
    completed_since,
    open_trip_of_driver,
    open_trip_of_rider,
    pending_offer_of_driver,
)
from dispatch.trips.views import TripViews, view_for, views

__all__ = [
    "ClosedOffer",
    "TripViews",
    "completed_since",
    "expire_offers",
    "expire_requests",
    "mark_delivered",
    "open_trip_of_driver",
    "open_trip_of_rider",
    "pending_offer_of_driver",
    "view_for",
    "views",
    "withdraw_offers_of_driver",
]
