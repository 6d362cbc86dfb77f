"""The frames of positions and availability: where a rider's driver is (written from the
positions the location ingest takes in), and whether a driver takes trips (the driver's own
frame, echoed, and sent unasked when a place under the cap of cars in service frees up)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import ConfigDict, Field

from coop.frames import Frame


class DriverLocationFrame(Frame):
    """Where the rider's driver is, while on the way to the pickup and during the trip."""

    model_config = ConfigDict(title="DriverLocation")

    type: Literal["driver_location"]
    trip_id: uuid.UUID
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    # Added after v1 (old clients ignore them): where the car is heading and the service's
    # estimate to get there, from the same travel-time model as quotes and offers.
    heading_to: Literal["pickup", "destination"] | None = Field(
        default=None,
        description="the pickup until the driver arrives, then the destination; absent when "
        "the service does not say",
    )
    eta_s: int | None = Field(
        default=None,
        ge=0,
        description="seconds to drive from this position to `heading_to`, by the travel-time "
        "model of quotes; absent when the service does not say",
    )

    def wire(self) -> dict[str, Any]:
        """Without the two later fields when the service does not say them: the frame is then
        the very text v1 clients were written against."""
        values = super().wire()
        for name in ("heading_to", "eta_s"):
            if values[name] is None:
                del values[name]
        return values


class AvailabilityFrame(Frame):
    """Whether the driver takes trips: sent by the driver, echoed once recorded, and sent by the
    service when it admits a driver who waited for a place (`dispatch.matching.capacity`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["availability"]
    available: bool = Field(strict=True)
