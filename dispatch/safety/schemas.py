"""What the safety routes and frames read and answer: bodies, and the operators' read model of an
alert or case (an allow-list built by `AlertOut.of`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from coop.text import FreeText
from dispatch.safety.models import SafetyAlert, SafetyAlertNote, SafetyAlertPosition

# The reasons a driver may flag a rider for a person to review (a list, so the queue can be read
# at a glance; the note says the rest).
FLAG_REASONS = (
    "threatening_behaviour",
    "harassment",
    "intoxicated",
    "damage_to_vehicle",
    "refused_to_leave",
    "other",
)
FlagReason = Literal[
    "threatening_behaviour",
    "harassment",
    "intoxicated",
    "damage_to_vehicle",
    "refused_to_leave",
    "other",
]
OutcomeIn = Literal["real", "false_alarm", "drill"]


class Position(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, strict=True)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, strict=True)


class SosIn(BaseModel):
    """An SOS. Every field is optional: the button must work with nothing but a tap."""

    model_config = ConfigDict(extra="forbid")

    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False, strict=True)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False, strict=True)
    drill: bool = Field(
        default=False,
        description="Try the button: recorded as a drill and answered, never in the queue",
    )
    detail: Annotated[str, FreeText(max_chars=500, min_chars=0)] | None = None


class SosOut(BaseModel):
    id: uuid.UUID
    drill: bool
    trip_id: uuid.UUID | None
    status: Literal["raised", "acknowledged", "resolved"]
    position_every_s: int = Field(
        description="Send the position (an `sos_position` frame, or `POST "
        "/v1/sos/{id}/positions`) at least this often until the alert is resolved; 0 for a drill"
    )


class FlagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: FlagReason
    note: Annotated[str, FreeText(max_chars=2_000, min_chars=0)] | None = None


class CreatedOut(BaseModel):
    id: uuid.UUID


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, FreeText(max_chars=4_000)]


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: OutcomeIn
    note: Annotated[str, FreeText(max_chars=4_000, min_chars=0)] | None = None


class PositionOut(BaseModel):
    source: Literal["raiser", "car"]
    lat: float
    lon: float
    at: datetime

    @classmethod
    def of(cls, row: SafetyAlertPosition) -> PositionOut:
        return cls(source=row.source, lat=row.lat, lon=row.lon, at=row.at)


class NoteOut(BaseModel):
    text: str
    at: datetime
    author_id: uuid.UUID | None

    @classmethod
    def of(cls, row: SafetyAlertNote) -> NoteOut:
        return cls(text=row.text, at=row.at, author_id=row.author_id)


class AlertOut(BaseModel):
    """An alert or a case as the operators see it."""

    id: uuid.UUID
    kind: str
    drill: bool
    status: Literal["raised", "acknowledged", "resolved"]
    raised_by: Literal["rider", "driver"]
    raised_by_id: uuid.UUID
    trip_id: uuid.UUID | None
    rider_id: uuid.UUID | None
    driver_id: uuid.UUID | None
    vehicle_plate: str | None
    vehicle_description: str | None
    reason: str | None
    detail: str | None
    raised_at: datetime
    age_s: float = Field(description="Seconds since it was raised, at the time of the answer")
    ack_within_s: int = Field(description="The agreement's `safety.ack_within_s` when raised")
    acknowledged_at: datetime | None
    ack_s: float | None = Field(description="Seconds it took a person to acknowledge it")
    resolved_at: datetime | None
    outcome: OutcomeIn | None
    positions: list[PositionOut] = Field(description="Newest first, at most 50")
    notes: list[NoteOut]

    @classmethod
    def of(
        cls,
        row: SafetyAlert,
        *,
        now: datetime,
        positions: list[SafetyAlertPosition],
        notes: list[SafetyAlertNote],
    ) -> AlertOut:
        return cls(
            id=row.id,
            kind=row.kind,
            drill=row.drill,
            status=status_of(row),
            raised_by=row.raised_by_role,
            raised_by_id=row.raised_by_id,
            trip_id=row.trip_id,
            rider_id=row.rider_id,
            driver_id=row.driver_id,
            vehicle_plate=row.vehicle_plate,
            vehicle_description=row.vehicle_description,
            reason=row.reason,
            detail=row.detail,
            raised_at=row.raised_at,
            age_s=max(0.0, (now - row.raised_at).total_seconds()),
            ack_within_s=row.ack_within_s,
            acknowledged_at=row.acknowledged_at,
            ack_s=None
            if row.acknowledged_at is None
            else (row.acknowledged_at - row.raised_at).total_seconds(),
            resolved_at=row.resolved_at,
            outcome=row.outcome,
            positions=[PositionOut.of(p) for p in positions],
            notes=[NoteOut.of(n) for n in notes],
        )


def status_of(row: SafetyAlert) -> Literal["raised", "acknowledged", "resolved"]:
    if row.resolved_at is not None:
        return "resolved"
    if row.acknowledged_at is not None:
        return "acknowledged"
    return "raised"
