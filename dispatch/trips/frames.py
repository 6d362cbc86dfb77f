"""The frames the service sends about trips and offers (docs/protocol.md, "Realtime"): they
belong to the trip, so the trips package owns them and pushes them (`push`); the sockets
(`dispatch.realtime`) only carry them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, PlainSerializer, WithJsonSchema

from coop.frames import Frame
from coop.geo import Position
from dispatch.trips.schemas import TripOut


def _isoformat(value: datetime) -> str:
    return value.isoformat()


# An offer's deadline has always gone out as `datetime.isoformat()` writes it (`+00:00`, where the
# trip's times say `Z`); both are RFC 3339, and the bytes stay what clients already read.
IsoTime = Annotated[
    datetime,
    PlainSerializer(_isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class OfferFrame(Frame):
    """A trip offered to this driver, with why this driver, until `expires_at`."""

    model_config = ConfigDict(title="Offer")

    type: Literal["offer"]
    offer_id: uuid.UUID
    trip_id: uuid.UUID
    pickup: Position
    dropoff: Position
    pickup_distance_m: int = Field(ge=0, description="Straight-line metres to the pickup")
    pickup_eta_s: int = Field(ge=0, description="Estimated seconds to reach the pickup")
    fare_estimate: str = Field(
        pattern=r"^\d+\.\d{2}$", description="The quoted fare, a decimal string with two places"
    )
    currency: str = Field(examples=["CAD"])
    expires_at: IsoTime = Field(description="Accept before this time, or the offer lapses")
    why: str = Field(
        description="Why this driver got this offer, in words and figures (distance, time "
        "waiting since the last trip, ...)"
    )
    wheelchair_accessible: bool = Field(
        default=False, description="The rider needs a wheelchair-accessible vehicle"
    )


class OfferWithdrawnFrame(Frame):
    """An offer is no longer open; accepting it would be 409."""

    model_config = ConfigDict(title="OfferWithdrawn")

    type: Literal["offer_withdrawn"]
    offer_id: uuid.UUID
    reason: str = Field(
        description="expired (not answered in time), cancelled (the rider cancelled the trip), "
        "unfulfilled (the request reached its max wait), unavailable (the driver went off duty), "
        "undelivered (timed out without ever being written to the driver's socket)",
        examples=["expired", "cancelled", "unfulfilled", "unavailable", "undelivered"],
    )


class TripFrame(Frame):
    """The trip after each change of status; also sent at once on (re)connection for the open
    trip. The rider's copy names the driver and vehicle once assigned; the driver's copy never
    names the rider's account (`rider_id` is null) and gives only `rider.first_name`, the first
    name the rider chose to share."""

    model_config = ConfigDict(title="Trip")

    type: Literal["trip"]
    trip: TripOut
