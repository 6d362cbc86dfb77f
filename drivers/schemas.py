"""The drivers domain on the wire."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from coop.text import MemberNumber, Name
from drivers.models import DriverStatus


class VehicleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plate: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9 -]+$")
    seats: int = Field(ge=1, le=8)
    wheelchair_accessible: bool = False


class Vehicle(VehicleIn):
    model_config = ConfigDict(from_attributes=True)


class DriverCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    member_number: MemberNumber
    committee: bool = False
    reviewer: bool = False
    simulated: bool = Field(
        default=False,
        description="An account of a simulated city (the demo): it drives and is offered trips "
        "like any member, but is on no vote's roll",
    )
    vehicle: VehicleIn


class DriverOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    member_number: str
    status: DriverStatus
    committee: bool
    reviewer: bool
    simulated: bool
    vehicle: Vehicle
