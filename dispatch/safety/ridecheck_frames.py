"""The ride check's frames (docs/protocol.md, "Ride check"): the question "Everything OK?" the
service sends both parties of a trip, and the answer either sends back. `server.asyncapi`
publishes these same models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from coop.frames import Frame

Answer = Literal["ok", "help"]


class SafetyCheckFrame(Frame):
    """The ride check asks "Everything OK?": answer with a `safety_check_answer` frame before
    `answer_by`. Sent again, with `answered`, once the service has recorded this party's answer
    (never the other party's: a rider who asks for help is not given away to the driver)."""

    model_config = ConfigDict(title="SafetyCheck")

    type: Literal["safety_check"]
    check_id: uuid.UUID
    trip_id: uuid.UUID
    detector: Literal["stopped", "away", "not_started", "end_far"] = Field(
        description="What the service noticed: stopped (the car has not moved for a while "
        "mid-trip), away (the trip is moving away from its destination), not_started (the "
        "driver arrived long ago and the trip has not started), end_far (the trip ended far "
        "from its destination)"
    )
    asked_at: datetime
    answer_by: datetime = Field(
        description="Without an answer of both parties by then, a person of the co-op is told"
    )
    answered: Answer | None = Field(
        default=None, description="This party's recorded answer; absent while unanswered"
    )

    def wire(self) -> dict[str, Any]:
        wire = super().wire()
        if wire["answered"] is None:
            del wire["answered"]
        return wire


class SafetyCheckAnswerFrame(Frame):
    """A party's answer to a `safety_check`: `ok`, or `help`, which is an SOS (a person of the
    co-op is told at once; the other party is not)."""

    model_config = ConfigDict(title="SafetyCheckAnswer", extra="forbid", frozen=True)

    type: Literal["safety_check_answer"]
    check_id: uuid.UUID
    answer: Answer
