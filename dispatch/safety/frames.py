"""The safety frames of the sockets (docs/protocol.md, "SOS"): what a rider's or a driver's app
sends (`sos`, `sos_position`) and what it is told (`sos_status`). Pure models; the socket
(`dispatch.realtime.session`) parses and carries them, `push` publishes the status."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from coop import pubsub
from coop.auth import Role
from coop.errors import dependency_down
from coop.frames import Frame
from coop.push import sender as push
from coop.push.message import Urgency
from coop.redis_client import Redis
from coop.text import FreeText
from dispatch.safety.models import SafetyAlert
from dispatch.safety.schemas import status_of

logger = logging.getLogger("coop.safety")


class _ClientFrame(Frame):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SosFrame(_ClientFrame):
    """Raises an SOS (the socket's own trip if `trip_id` is left out and one is open)."""

    model_config = ConfigDict(title="Sos", extra="forbid", frozen=True)

    type: Literal["sos"]
    trip_id: uuid.UUID | None = None
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False, strict=True)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False, strict=True)
    drill: bool = False
    # Free text as over HTTP (SosIn): no control characters, at most 500 characters.
    detail: Annotated[str, FreeText(max_chars=500, min_chars=0)] | None = None


class SosPositionFrame(_ClientFrame):
    """Where the raiser is, at least every 2 s while their alert is open."""

    model_config = ConfigDict(title="SosPosition", extra="forbid", frozen=True)

    type: Literal["sos_position"]
    alert_id: uuid.UUID
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, strict=True)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, strict=True)


class SosStatusFrame(Frame):
    """The raiser's alert: recorded (the answer to `sos`), then acknowledged by a person, then
    resolved (stop sending `sos_position`)."""

    model_config = ConfigDict(title="SosStatus")

    type: Literal["sos_status"]
    id: uuid.UUID
    status: Literal["raised", "acknowledged", "resolved"]
    drill: bool
    trip_id: uuid.UUID | None
    position_every_s: int = Field(
        description="Send `sos_position` at least this often while this is not 0"
    )
    at: datetime


def status_frame(alert: SafetyAlert, *, position_every_s: int) -> SosStatusFrame:
    status = status_of(alert)
    at = alert.resolved_at or alert.acknowledged_at or alert.raised_at
    return SosStatusFrame(
        type="sos_status",
        id=alert.id,
        status=status,
        drill=alert.drill,
        trip_id=alert.trip_id,
        position_every_s=0 if status == "resolved" else position_every_s,
        at=at,
    )


# An alert's status waits on the push service as long as an operator's promise runs, and more.
STATUS_PUSH_TTL_S = 3600


def status_push(alert: SafetyAlert, frame: SosStatusFrame) -> push.Push:
    """The push of an alert's status to its raiser: which alert, and its status (the app
    fetches the rest with `GET /v1/sos/{id}`)."""
    return push.Push(
        role=Role(alert.raised_by_role),
        subject_id=alert.raised_by_id,
        kind="safety",
        data={"kind": "safety", "alert_id": str(alert.id), "status": frame.status},
        ttl_s=STATUS_PUSH_TTL_S,
        urgency=Urgency.high,
        topic=f"sos{alert.id.hex[:24]}",
    )


async def tell_raiser(redis: Redis, alert: SafetyAlert, *, position_every_s: int) -> None:
    """After the commit: the raiser's sockets hear the alert's new status. A publish Redis does
    not take is logged, not raised: the row is recorded, and the app reads it again."""
    channel = (
        pubsub.rider_channel(alert.raised_by_id)
        if alert.raised_by_role == "rider"
        else pubsub.driver_channel(alert.raised_by_id)
    )
    frame = status_frame(alert, position_every_s=position_every_s)
    try:
        heard = await pubsub.publish(redis, channel, frame)
        if heard == 0 and not alert.drill:
            # No socket of theirs open: their phone is told by push (coop.push), at once.
            push.notify(redis, status_push(alert, frame))
    except Exception as exc:
        # Redis away is an outage (the app reads `GET /v1/sos/{id}` again); anything else is a
        # bug, raised.
        dependency = dependency_down(exc)
        if dependency is None:
            raise
        logger.warning(
            "could not tell the raiser of alert %s: %s unreachable", alert.id, dependency
        )
