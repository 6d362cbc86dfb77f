"""The SOS frames of a socket (docs/protocol.md, "SOS"): an `sos` is recorded and committed
before it is answered on the same socket (`sos_status`, whose `id` the `sos_position` frames
name); an `sos_position` is stored with its alert. A refusal is an error frame; the socket
stays open."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.auth import Principal, Role
from coop.errors import ProblemError
from dispatch.realtime.frames import BadFrame
from dispatch.safety import alerts
from dispatch.safety.frames import SosFrame, SosPositionFrame, status_frame
from dispatch.trips import service as trips_service

FRAME_TYPES = ("sos", "sos_position")


async def handle(
    frame: SosFrame | SosPositionFrame,
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal | None,
    clock: Callable[[], datetime],
    send: Callable[[str], object],
) -> None:
    """Acts on the frame, and sends this socket its answer (an `sos` is answered)."""
    assert principal is not None and principal.subject_id is not None
    subject_id = principal.subject_id
    raiser: alerts.Role = "driver" if principal.role is Role.driver else "rider"
    async with sessionmaker() as session:
        try:
            if isinstance(frame, SosPositionFrame):
                await alerts.record_position(
                    session,
                    alert_id=frame.alert_id,
                    account_id=subject_id,
                    role=raiser,
                    lat=frame.lat,
                    lon=frame.lon,
                    now=clock(),
                )
                await session.commit()
                return
            send(await _raise(session, frame, subject_id, raiser, clock))
        except ProblemError as problem:
            raise BadFrame(f"{problem.title}: {problem.detail}", code=problem.type) from None


async def _raise(
    session: AsyncSession,
    frame: SosFrame,
    subject_id: uuid.UUID,
    raiser: alerts.Role,
    clock: Callable[[], datetime],
) -> str:
    if (frame.lat is None) != (frame.lon is None):
        raise BadFrame("Bad sos frame: send both lat and lon, or neither")
    position = None if frame.lat is None or frame.lon is None else (frame.lat, frame.lon)
    trip_id = frame.trip_id
    if trip_id is None:
        open_trip = (
            await trips_service.open_trip_of_driver(session=session, driver_id=subject_id)
            if raiser == "driver"
            else await trips_service.open_trip_of_rider(session=session, rider_id=subject_id)
        )
        trip_id = None if open_trip is None else open_trip.id
    alert_id = await alerts.raise_alert(
        session,
        clock=clock,
        kind="sos",
        account_id=subject_id,
        role=raiser,
        trip_id=trip_id,
        position=position,
        detail=frame.detail,
        drill=frame.drill,
    )
    await session.commit()
    alert = await alerts.status_for_raiser(
        session, alert_id=alert_id, account_id=subject_id, role=raiser
    )
    return status_frame(alert, position_every_s=alerts.POSITION_EVERY_S).encode()
