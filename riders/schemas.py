"""Rider accounts on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from coop.text import FreeText, Name

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
    model_config = ConfigDict(extra="forbid")

    first_name: FirstName | None = FIRST_NAME


class RiderOut(BaseModel):
    id: uuid.UUID
    name: str
    first_name: str | None = Field(description="The first name shown to your drivers, if any")
    created_at: datetime
