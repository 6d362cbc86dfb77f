"""Trips, quotes and offers on the wire (docs/protocol.md, "Trips")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from coop.geo import Position
from coop.text import FreeText


class TripAsk(BaseModel):
    """The body of a quote or a trip request."""

    model_config = ConfigDict(extra="forbid")

    pickup: Position
    dropoff: Position
    wheelchair_accessible: bool = False


class TripRequest(TripAsk):
    """The body of a trip request: the ask, and the quote the rider consents to."""

    quote_id: uuid.UUID | None = Field(
        default=None,
        description="the `quote_id` of an open quote of this rider for the same pickup, "
        "destination and class: the rider's consent to its maximum price (required where the "
        "jurisdiction requires consent, as Québec does: docs/jurisdiction.md)",
    )

    def ask(self) -> TripAsk:
        return TripAsk.model_validate(self.model_dump(exclude={"quote_id"}))


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, FreeText(max_chars=500, min_chars=0)] | None = None


class QuoteOut(BaseModel):
    # Extra keys of the fare engine pass through unchanged.
    model_config = ConfigDict(extra="allow")

    total: str = Field(examples=["14.20"])
    currency: str = Field(examples=["CAD"])
    agreement_version: int
    distance_m: int
    duration_s: int


class QuoteLine(BaseModel):
    """One line of what a rider is billed: the fare (estimated on a quote), the dues, a tax."""

    kind: Literal["fare_estimate", "fare", "dues", "tax"]
    code: str = Field(examples=["gst"])
    name: str = Field(description="in English", examples=["GST"])
    name_fr: str = Field(description="in French", examples=["TPS"])
    amount: str = Field(examples=["0.71"])
    percent: str | None = Field(default=None, examples=["5"])


class ConsentQuoteOut(QuoteOut):
    """A quote the rider may consent to (`POST /v1/trips` with its `quote_id`)."""

    quote_id: uuid.UUID
    expires_at: datetime
    max_fare: str = Field(description="the most the fare can be (the agreement's cap)")
    max_total: str = Field(
        description="the most the rider can be billed: the capped fare with the dues and taxes"
    )
    lines: list[QuoteLine] = Field(
        description="the estimate and what the law adds to it: fare_estimate, dues, each tax"
    )
    estimated_total: str = Field(description="the sum of `lines`")


class FareOut(QuoteOut):
    driver_earnings: str = Field(examples=["13.66"])
    coop_commission: str = Field(examples=["1.19"])


class VehicleOut(BaseModel):
    plate: str
    seats: int
    wheelchair_accessible: bool
    make: str | None = Field(default=None, description="The car's make, if recorded")
    model: str | None = Field(default=None, description="The car's model, if recorded")
    colour: str | None = Field(default=None, description="The car's colour, if recorded")


class TripDriverOut(BaseModel):
    """Who is coming: shown to the rider once a driver accepted."""

    id: uuid.UUID
    name: str
    vehicle: VehicleOut
    first_name: str = Field(default="", description="The driver's first name, to greet them")
    photo_url: str | None = Field(
        default=None,
        description="In the rider's view: the path of the driver's approved photo (JPEG, "
        "readable by this trip's rider while the trip is current); absent until a person "
        "approved one, and always null in the driver's own view",
    )


class TripRiderOut(BaseModel):
    """Who to pick up, as the driver sees them: never an account id or a full name."""

    first_name: str | None = Field(
        description="The first name the rider chose to share with drivers, if any"
    )


class TripOut(BaseModel):
    id: uuid.UUID
    status: str = Field(
        examples=["requested"],
        description="requested, assigned, arrived, in_progress, completed, cancelled, unfulfilled",
    )
    rider_id: uuid.UUID | None = Field(
        description="The rider's account id, shown to the rider only; always null for the driver"
    )
    driver_id: uuid.UUID | None
    pickup: Position
    dropoff: Position
    wheelchair_accessible: bool
    requested_at: datetime
    assigned_at: datetime | None
    arrived_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    quote: QuoteOut
    fare: FareOut | None
    cancel_reason: str | None
    cancelled_by: str | None = Field(description="rider or driver, when cancelled")
    cancellation_fee: str | None = Field(
        description="Charged to the rider when they cancel after the free period; "
        "all of it goes to the driver",
        examples=["5.00"],
    )
    matching_deadline_at: datetime = Field(
        description="The trip ends unfulfilled if no driver has accepted by then"
    )
    driver: TripDriverOut | None = Field(description="The driver and vehicle, once assigned")
    rider: TripRiderOut | None = Field(
        default=None,
        description="For the driver, once assigned: what they may know of the rider (the first "
        "name the rider chose to share). Null for the rider",
    )
    cancellation_fee_reason: str | None = Field(
        default=None, description="Why a rider's cancellation cost what it did"
    )
    implausible_positions: int = Field(
        default=0,
        description="Positions the driver reported while holding the trip that were not "
        "believed (a move faster than the agreement's dispatch.max_plausible_speed_kmh)",
    )
    fare_capped: bool = Field(
        default=False,
        description="The metered fare was above the quote by more than the agreement's "
        "max_over_quote_percent and was capped there",
    )
    fare_cap_reason: str | None = Field(default=None, description="Why the fare was capped")
    timed_out: str | None = Field(
        default=None,
        description="Set when the service ended the trip itself: no_show (arrived, and the ride "
        "had not started within the agreement's dispatch.no_show_wait_s) or ride_overrun (under "
        "way past its quote's duration with the agreement's overrun; ended for a person to "
        "review)",
    )
    pin: str | None = Field(
        default=None,
        description="The rider's view only, while the trip waits for its pickup: the 4 digits "
        "the rider gives the driver, who sends them to start the ride. Always null for the "
        "driver",
        examples=["0427"],
    )
    pin_required: bool = Field(
        default=False,
        description="Starting this ride needs the rider's PIN now (false once the rider "
        "confirmed their car from the app, or when no PIN was asked for)",
    )


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pin: str | None = Field(
        default=None,
        pattern=r"^[0-9]{4}$",
        description="The PIN the rider gives you, when the trip has one (`pin_required`)",
    )


class OfferOut(BaseModel):
    """The answer to a decline: the offer, now closed."""

    id: uuid.UUID
    trip_id: uuid.UUID
    status: str
    responded_at: datetime | None


# A person's note on a fare they reviewed.
FARE_REVIEW_NOTE_MAX_CHARS = 500


class FareReviewClose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, FreeText(max_chars=FARE_REVIEW_NOTE_MAX_CHARS)] = Field(
        description="What the reviewer found, and did (a refund, a word with the driver)"
    )


class FareReviewOut(BaseModel):
    """A trip on the fare review list, with what a reviewer needs to judge it."""

    trip_id: uuid.UUID
    driver_id: uuid.UUID | None
    ended_at: datetime
    reason: str = Field(description="Why the fare waits for a person")
    distance_m: int | None = Field(description="What the meter charged for")
    route_distance_m: int = Field(description="The route the quote assumed")
    duration_s: int | None
    fare_total: str | None
    quote_total: str
    fare_capped: bool
    implausible_positions: int
    reviewed_at: datetime | None
    note: str | None
