"""The drivers domain on the wire."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from coop.text import FreeText, MemberNumber, Name
from drivers.models import DriverStatus

# A vehicle identification number: 17 characters, never I, O or Q (ISO 3779).
Vin = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-HJ-NPR-Z0-9]{17}$")
]
# A driver's licence file number as the licensing authority writes it: letters, digits, dashes.
LicenceNumber = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_upper=True, pattern=r"^[A-Z0-9][A-Z0-9 -]{2,30}[A-Z0-9]$"
    ),
]
CarWord = Annotated[str, FreeText(max_chars=40, multiline=False)]


class VehicleIn(BaseModel):
    """A car and its register (docs/jurisdiction.md): the register's facts are optional, and a
    car without those its jurisdiction requires is registered but not offered trips."""

    model_config = ConfigDict(extra="forbid")

    plate: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9 -]+$")
    seats: int = Field(ge=1, le=8)
    wheelchair_accessible: bool = False
    vin: Vin | None = None
    make: CarWord | None = None
    model: CarWord | None = None
    year: int | None = Field(default=None, ge=1950, le=2100)
    colour: Annotated[str, FreeText(max_chars=30, multiline=False)] | None = None
    owner: Name | None = None
    odometer_km: int | None = Field(default=None, ge=0, le=2_000_000)
    inspection_due_on: date | None = None


class QualificationIn(BaseModel):
    """A driver's legal qualification, as an operator read it from the documents (no scan is
    kept). Every fact is optional: what is missing is named by the driver's standing."""

    model_config = ConfigDict(extra="forbid")

    licence_number: LicenceNumber | None = None
    training_certificate_on: date | None = None
    record_check_on: date | None = None
    record_check_clear: bool | None = Field(
        default=None,
        description="the check's outcome as a person recorded it: `true` for a certificate of no "
        "judicial record, `false` for a list of records (the driver is not offered trips until "
        "a clear check is recorded)",
    )
    authorization_expires_on: date | None = None

    @model_validator(mode="after")
    def _check_has_its_outcome(self) -> QualificationIn:
        if (self.record_check_on is None) != (self.record_check_clear is None):
            raise ValueError("record_check_on and record_check_clear go together")
        return self


class QualificationOut(QualificationIn):
    model_config = ConfigDict(from_attributes=True)


class ItemName(BaseModel):
    fr: str
    en: str


class QualificationItemOut(BaseModel):
    key: str
    subject: Literal["driver", "vehicle"]
    name: ItemName
    valid: bool
    valid_through: date | None = Field(description="the last day it is valid; null: no end")
    clause: str = Field(description="the clause that requires it (docs/jurisdiction.md)")


class QualificationStanding(BaseModel):
    """Whether the law lets this driver and car carry riders today, and what is missing."""

    driver_id: uuid.UUID
    jurisdiction: str
    today: date = Field(description="the day in the jurisdiction's time zone")
    eligible: bool = Field(description="offered trips: every required item is valid")
    missing: list[str] = Field(description="the keys of the items missing, lapsed or not clear")
    expiring: list[str] = Field(description="the keys of valid items that lapse soon")
    items: list[QualificationItemOut]
    qualification: QualificationOut | None


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
    qualification: QualificationIn | None = None


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
