"""Domain operations on members."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from coop.auth import Role, issue_token
from coop.errors import Conflict, NotFound
from drivers import qualifications
from drivers.models import Driver, DriverStatus, DriverStatusChange, DriverVehicle
from drivers.schemas import DriverCreate


class DuplicateMemberNumber(Conflict):
    type = "duplicate_member_number"
    title = "A member with this number exists"


async def create(*, session: AsyncSession, data: DriverCreate, now: datetime) -> tuple[Driver, str]:
    """Registers a member with a vehicle (and, when given, their qualification); answers the
    driver and their new token."""
    driver = Driver(
        id=uuid.uuid4(),
        name=data.name,
        member_number=data.member_number,
        committee=data.committee,
        reviewer=data.reviewer,
        simulated=data.simulated,
        status=DriverStatus.active,
    )
    driver.vehicle = DriverVehicle(**data.vehicle.model_dump())
    session.add(driver)
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise DuplicateMemberNumber(
            f"Member number {data.member_number!r} is already registered"
        ) from exc
    await qualifications.record_vehicle(
        session=session,
        driver_id=driver.id,
        facts=data.vehicle.model_dump(),
        now=now,
        audited=False,
    )
    if data.qualification is not None:
        await qualifications.record_qualification(
            session=session,
            driver_id=driver.id,
            facts=data.qualification.model_dump(),
            now=now,
            audited=False,
        )
    token = await issue_token(session=session, role=Role.driver, subject_id=driver.id)
    await session.commit()
    return driver, token


async def get(*, session: AsyncSession, driver_id: uuid.UUID) -> Driver:
    driver = await session.scalar(select(Driver).where(Driver.id == driver_id))
    if driver is None:
        raise NotFound(f"No driver {driver_id}")
    return driver


async def list_changes(*, session: AsyncSession, driver_id: uuid.UUID) -> list[DriverStatusChange]:
    """Every status change of one driver, oldest first."""
    rows = await session.scalars(
        select(DriverStatusChange)
        .where(DriverStatusChange.driver_id == driver_id)
        .order_by(DriverStatusChange.changed_at, DriverStatusChange.id)
    )
    return list(rows)
