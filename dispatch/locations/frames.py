"""The frame that tells a rider where their driver is: written from the positions the
location ingest takes in, so the locations package owns it."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import ConfigDict, Field

from coop.frames import Frame


class DriverLocationFrame(Frame):
    """Where the rider's driver is, while on the way to the pickup and during the trip."""

    model_config = ConfigDict(title="DriverLocation")

    type: Literal["driver_location"]
    trip_id: uuid.UUID
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
