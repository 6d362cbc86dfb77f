"""Domain operations on members."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from coop import paging
from coop.auth import Role, issue_token
from coop.errors import Conflict, NotFound, UnprocessableEntity
from coop.jurisdiction import Profile
from coop.search import Match, contains_pattern
from drivers import qualifications
from drivers.models import (
    Driver,
    DriverQualification,
    DriverStatus,
    DriverStatusChange,
    DriverVehicle,
)
from drivers.schemas import (
    DriverCreate,
    ItemName,
    QualificationIn,
    QualificationItemOut,
    QualificationOut,
    QualificationStanding,
    VehicleIn,
)


class DuplicateMemberNumber(Conflict):
    type = "duplicate_member_number"
    title = "A member with this number exists"


class DatedInTheFuture(UnprocessableEntity):
    type = "dated_in_the_future"
    title = "A certificate cannot be dated after today"


def no_future_certificates(facts: QualificationIn | None, today: date) -> None:
    """A certificate is read from a document already issued: one dated after the law's today
    is a typing mistake."""
    if facts is None:
        return
    for name in ("training_certificate_on", "record_check_on"):
        issued: date | None = getattr(facts, name)
        if issued is not None and issued > today:
            raise DatedInTheFuture(f"{name} is {issued}, after today ({today})", field=name)


async def register(
    *, session: AsyncSession, profile: Profile, data: DriverCreate, now: datetime
) -> tuple[Driver, str]:
    """Registers a union member as a driver, as `POST /v1/drivers` and the operators' page do:
    their certificates checked against the law's today, then `create`."""
    no_future_certificates(data.qualification, qualifications.today_in(profile, now))
    return await create(session=session, data=data, now=now)


async def record_qualification(
    *,
    session: AsyncSession,
    profile: Profile,
    driver_id: uuid.UUID,
    facts: QualificationIn,
    now: datetime,
) -> QualificationStanding:
    """Replaces a driver's recorded qualification (audited) and answers the standing."""
    no_future_certificates(facts, qualifications.today_in(profile, now))
    await qualifications.record_qualification(
        session=session, driver_id=driver_id, facts=facts.model_dump(), now=now
    )
    await session.commit()
    return await standing(session=session, profile=profile, driver_id=driver_id, now=now)


async def record_vehicle(
    *,
    session: AsyncSession,
    profile: Profile,
    driver_id: uuid.UUID,
    facts: VehicleIn,
    now: datetime,
) -> QualificationStanding:
    """Replaces the facts of a driver's car (audited) and answers the standing."""
    await qualifications.record_vehicle(
        session=session, driver_id=driver_id, facts=facts.model_dump(), now=now
    )
    await session.commit()
    return await standing(session=session, profile=profile, driver_id=driver_id, now=now)


async def standing(
    *, session: AsyncSession, profile: Profile, driver_id: uuid.UUID, now: datetime
) -> QualificationStanding:
    """Whether the law lets the driver carry riders today, item by item, with the facts."""
    found = await qualifications.standing(
        session=session, profile=profile, driver_id=driver_id, now=now
    )
    record = await session.get(DriverQualification, driver_id)
    return QualificationStanding(
        driver_id=driver_id,
        jurisdiction=profile.key,
        today=found.today,
        eligible=found.eligible,
        missing=[state.item.key for state in found.missing],
        expiring=[state.item.key for state in found.expiring],
        items=[
            QualificationItemOut(
                key=state.item.key,
                subject=state.item.subject,
                name=ItemName(fr=state.item.name.fr, en=state.item.name.en),
                valid=state.valid,
                valid_through=state.valid_through,
                clause=state.item.clause,
            )
            for state in found.items
        ],
        qualification=None if record is None else QualificationOut.model_validate(record),
    )


async def search(
    *,
    session: AsyncSession,
    query: str,
    after: tuple[str, uuid.UUID] | None,
    limit: int,
) -> list[Match]:
    """Drivers whose name holds `query` (case and accents aside), or whose member number is
    `query`, in the order of their folded name; those after the key `after`, `limit` at most."""
    key = Driver.name_folded
    statement = select(
        Driver.id, Driver.name, Driver.status, Driver.member_number, Driver.created_at
    )
    if query:
        statement = statement.where(
            or_(key.like(contains_pattern(query), escape="\\"), Driver.member_number == query)
        )
    if after is not None:
        statement = statement.where(paging.after_key([(key, False), (Driver.id, False)], after))
    rows = await session.execute(statement.order_by(key, Driver.id).limit(limit))
    return [
        Match(
            kind="driver",
            id=row.id,
            name=row.name,
            status=row.status.value,
            member_number=row.member_number,
            created_at=row.created_at,
        )
        for row in rows
    ]


async def create(*, session: AsyncSession, data: DriverCreate, now: datetime) -> tuple[Driver, str]:
    """Registers a member with a vehicle (and, when given, their qualification); answers the
    driver and their new token. Callers check the certificates' dates first (`register`)."""
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
