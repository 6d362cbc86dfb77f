"""HTTP routes of the drivers domain: registering members, and the qualification register."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from coop.auth import AccountCreated, Admin
from coop.clock import Now
from coop.dependencies import JurisdictionDep, SessionDep
from coop.jurisdiction import Profile
from drivers import qualifications, service
from drivers.dependencies import CurrentDriver
from drivers.schemas import (
    DriverCreate,
    DriverOut,
    ItemName,
    QualificationIn,
    QualificationStanding,
    VehicleIn,
)

router = APIRouter(prefix="/v1/drivers", tags=["drivers"])


async def _standing(
    session: AsyncSession, profile: Profile, driver_id: uuid.UUID, now: Now
) -> QualificationStanding:
    return await service.standing(session=session, profile=profile, driver_id=driver_id, now=now)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AccountCreated)
async def register_driver(
    body: DriverCreate, session: SessionDep, profile: JurisdictionDep, now: Now, _: Admin
) -> AccountCreated:
    """Registers a union member as a driver (admin only), with their car and, when given, their
    qualification; one without what the jurisdiction requires is registered, not offered trips."""
    driver, token = await service.register(session=session, profile=profile, data=body, now=now)
    return AccountCreated(id=driver.id, token=token)


@router.get("/me", response_model=DriverOut)
async def read_me(driver: CurrentDriver) -> DriverOut:
    return DriverOut.model_validate(driver)


@router.get("/me/qualification", response_model=QualificationStanding)
async def read_my_qualification(
    driver: CurrentDriver, session: SessionDep, profile: JurisdictionDep, now: Now
) -> QualificationStanding:
    """Whether the law lets me carry riders today, and what to provide if not."""
    return await _standing(session, profile, driver.id, now)


class Renewal(BaseModel):
    driver_id: uuid.UUID
    driver_name: str
    item: str
    name: ItemName
    valid_through: date


@router.get("/qualifications/expiring", response_model=list[Renewal])
async def read_expiring(
    session: SessionDep,
    profile: JurisdictionDep,
    now: Now,
    _: Admin,
    within_days: Annotated[int, Query(ge=0, le=366)] = 30,
) -> list[Renewal]:
    """Every valid item that lapses within `within_days`, soonest first (admin only)."""
    due = await qualifications.renewals_due(
        session=session, profile=profile, now=now, within_days=within_days
    )
    return [
        Renewal(
            driver_id=renewal.driver_id,
            driver_name=renewal.driver_name,
            item=renewal.item.key,
            name=ItemName(fr=renewal.item.name.fr, en=renewal.item.name.en),
            valid_through=renewal.valid_through,
        )
        for renewal in due
    ]


@router.get("/{driver_id}/qualification", response_model=QualificationStanding)
async def read_qualification(
    driver_id: uuid.UUID, session: SessionDep, profile: JurisdictionDep, now: Now, _: Admin
) -> QualificationStanding:
    """A driver's qualification standing (admin only)."""
    return await _standing(session, profile, driver_id, now)


@router.put("/{driver_id}/qualification", response_model=QualificationStanding)
async def record_qualification(
    driver_id: uuid.UUID,
    body: QualificationIn,
    session: SessionDep,
    profile: JurisdictionDep,
    now: Now,
    _: Admin,
) -> QualificationStanding:
    """Records a driver's qualification as read from the documents (admin only): it replaces
    the previous record, so a renewal gives every fact again."""
    return await service.record_qualification(
        session=session, profile=profile, driver_id=driver_id, facts=body, now=now
    )


@router.put("/{driver_id}/vehicle", response_model=QualificationStanding)
async def record_vehicle(
    driver_id: uuid.UUID,
    body: VehicleIn,
    session: SessionDep,
    profile: JurisdictionDep,
    now: Now,
    _: Admin,
) -> QualificationStanding:
    """Records a driver's car and its register (admin only), replacing the previous facts."""
    return await service.record_vehicle(
        session=session, profile=profile, driver_id=driver_id, facts=body, now=now
    )
