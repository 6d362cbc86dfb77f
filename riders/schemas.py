"""Rider accounts on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from coop.text import FreeText, Name
from riders.safety import SafetyIn, SafetyOut

# The first name a rider shows their drivers: one line of free text (coop.text).
FirstName = Annotated[str, FreeText(max_chars=50, multiline=False)]
FIRST_NAME = Field(
    default=None,
    description="The first name you choose to show your drivers (null or absent: none). "
    "Drivers never see your account id or your full name",
    examples=["Rosa"],
)


class RiderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    first_name: FirstName | None = FIRST_NAME


class RiderUpdate(BaseModel):
    """Only the fields given change (a body of `{"safety": ...}` keeps the first name)."""

    model_config = ConfigDict(extra="forbid")

    first_name: FirstName | None = FIRST_NAME
    safety: SafetyIn | None = Field(
        default=None, description="Your safety preferences: only the fields given change"
    )


class RiderOut(BaseModel):
    id: uuid.UUID
    name: str
    first_name: str | None = Field(description="The first name shown to your drivers, if any")
    created_at: datetime
    safety: SafetyOut = Field(description="Your safety preferences (docs/safety.md)")
