"""Rider accounts on the wire."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RiderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
