"""The authorization's cap on cars in service (docs/jurisdiction.md): when as many cars as the
co-op's authorization allows are available or on a trip, a driver who goes available waits in
line, told their place, and is admitted first-come when a car leaves.

A car is in service while its driver is available and present (heard from within the grace
period) or holds an open trip. Going available and admitting from the line are decided under one
transaction-level advisory lock, so two drivers can never both take the last place; the line is a
table (`matching_capacity_wait`), so no worker's restart loses a place in it. A car leaves when
its driver goes off duty (the session admits the next at once) or falls silent (the matcher's
sweep admits the next at its next batch).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import DateTime, Exists, ForeignKey, delete, exists, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from coop import jurisdiction, pubsub
from coop.db import Base
from coop.redis_client import Redis
from coop.settings import Settings
from dispatch.locations import service as locations_service
from dispatch.locations.frames import AvailabilityFrame
from dispatch.locations.models import DriverPosition
from dispatch.states import DRIVER_OPEN
from dispatch.trips.models import Trip
from drivers.models import Driver

# The transaction-level advisory lock under which places are counted and given.
CAP_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"coop.cars-in-service").digest()[:8], "big", signed=True
)


def cap_of(settings: Settings) -> int | None:
    """The cap in force: the co-op's authorization's (a setting), else the jurisdiction's."""
    if settings.max_cars_in_service is not None:
        return settings.max_cars_in_service
    return jurisdiction.load(settings.jurisdiction).max_cars_in_service


class CapacityWait(Base):
    """A driver waiting for a place under the cap, in the order they asked."""

    __tablename__ = "matching_capacity_wait"

    driver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("driver.id", ondelete="CASCADE"), primary_key=True
    )
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


@dataclass(frozen=True)
class Admission:
    """Whether a driver going available was admitted, or their place in line (1: next)."""

    admitted: bool
    place: int | None = None


def _present(present_after: datetime) -> Exists:
    return exists().where(
        DriverPosition.driver_id == Driver.id,
        DriverPosition.available.is_(True),
        DriverPosition.last_seen_at > present_after,
    )


async def in_service(
    *, session: AsyncSession, present_after: datetime, besides: uuid.UUID | None = None
) -> int:
    """Cars in service now: drivers available and present, or on an open trip."""
    on_trip = exists().where(Trip.driver_id == Driver.id, Trip.status.in_(DRIVER_OPEN))
    query = select(func.count()).select_from(Driver).where(or_(_present(present_after), on_trip))
    if besides is not None:
        query = query.where(Driver.id != besides)
    return int(await session.scalar(query) or 0)


async def _place(session: AsyncSession, driver_id: uuid.UUID) -> int | None:
    mine = select(CapacityWait.queued_at).where(CapacityWait.driver_id == driver_id)
    queued_at = await session.scalar(mine)
    if queued_at is None:
        return None
    ahead = await session.scalar(
        select(func.count())
        .select_from(CapacityWait)
        .where(
            or_(
                CapacityWait.queued_at < queued_at,
                (CapacityWait.queued_at == queued_at) & (CapacityWait.driver_id < driver_id),
            )
        )
    )
    return int(ahead or 0) + 1


async def go_available(
    *,
    session: AsyncSession,
    driver_id: uuid.UUID,
    cap: int | None,
    now: datetime,
    grace_s: float,
) -> Admission:
    """Records that the driver takes trips if a place is free and nobody waits ahead of them;
    else puts them in line (or keeps their place). The caller commits."""
    if cap is None:
        await locations_service.set_availability(
            session=session, driver_id=driver_id, available=True, now=now, grace_s=grace_s
        )
        return Admission(admitted=True)
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CAP_LOCK_KEY})
    present_after = now - timedelta(seconds=grace_s)
    counted = await in_service(session=session, present_after=present_after, besides=driver_id)
    place = await _place(session, driver_id)
    nobody_ahead = place == 1 if place is not None else not await _anyone_waiting(session)
    if counted < cap and nobody_ahead:
        await session.execute(delete(CapacityWait).where(CapacityWait.driver_id == driver_id))
        await locations_service.set_availability(
            session=session, driver_id=driver_id, available=True, now=now, grace_s=grace_s
        )
        return Admission(admitted=True)
    await session.execute(
        insert(CapacityWait)
        .values(driver_id=driver_id, queued_at=now)
        .on_conflict_do_nothing(index_elements=["driver_id"])
    )
    # Waiting is not being in service: the driver is not offered trips meanwhile.
    await locations_service.set_availability(
        session=session, driver_id=driver_id, available=False, now=now, grace_s=grace_s
    )
    found = await _place(session, driver_id)
    assert found is not None
    return Admission(admitted=False, place=found)


async def _anyone_waiting(session: AsyncSession) -> bool:
    return bool(await session.scalar(select(exists().where(CapacityWait.driver_id.is_not(None)))))


async def leave_line(*, session: AsyncSession, driver_id: uuid.UUID) -> None:
    """The driver went off duty (or away): they wait no more. The caller commits."""
    await session.execute(delete(CapacityWait).where(CapacityWait.driver_id == driver_id))


async def admit_waiting(
    *, session: AsyncSession, cap: int | None, now: datetime, grace_s: float
) -> list[uuid.UUID]:
    """Admits drivers from the head of the line while places are free; a driver no longer
    connected (silent past the grace period) loses their place. Answers those admitted, to be
    told once the caller committed."""
    if cap is None:
        return []
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CAP_LOCK_KEY})
    present_after = now - timedelta(seconds=grace_s)
    admitted: list[uuid.UUID] = []
    line = list(
        await session.execute(
            select(CapacityWait.driver_id, DriverPosition.last_seen_at)
            .join(DriverPosition, DriverPosition.driver_id == CapacityWait.driver_id, isouter=True)
            .order_by(CapacityWait.queued_at, CapacityWait.driver_id)
        )
    )
    free = cap - await in_service(session=session, present_after=present_after)
    for driver_id, last_seen_at in line:
        if last_seen_at is None or last_seen_at <= present_after:
            await leave_line(session=session, driver_id=driver_id)
            continue
        if free <= 0:
            break
        await leave_line(session=session, driver_id=driver_id)
        await locations_service.set_availability(
            session=session, driver_id=driver_id, available=True, now=now, grace_s=grace_s
        )
        admitted.append(driver_id)
        free -= 1
    return admitted


async def tell_admitted(redis: Redis, driver_id: uuid.UUID) -> None:
    """Tells an admitted driver, on their channel, that they now take trips."""
    await pubsub.publish(
        redis,
        pubsub.driver_channel(driver_id),
        AvailabilityFrame(type="availability", available=True),
    )


async def waiting(*, session: AsyncSession) -> int:
    """How many drivers wait for a place (the operators' figure)."""
    return int(await session.scalar(select(func.count()).select_from(CapacityWait)) or 0)
