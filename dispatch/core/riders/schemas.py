"""Rider accounts on the wire."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from dispatch.core.text import Name


class RiderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
