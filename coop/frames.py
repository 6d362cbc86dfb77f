"""The base of every WebSocket frame: one JSON object with a `type`, as a pydantic model.

The models are both what is sent (`encode`) and what `/asyncapi.json` is generated from
(`server.asyncapi`), so the published contract cannot drift from the wire. Each domain declares
the frames it sends next to its own schemas; `coop.pubsub` publishes them.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict


class Frame(BaseModel):
    """A frame on a socket. Subclasses narrow `type` to their one `Literal`."""

    model_config = ConfigDict(frozen=True)

    type: str

    def wire(self) -> dict[str, Any]:
        """The frame as JSON values, fields in declaration order."""
        return self.model_dump(mode="json")

    def encode(self) -> str:
        """The frame's text on the wire: compact JSON, non-ASCII escaped (as it always was)."""
        return json.dumps(self.wire(), separators=(",", ":"))
