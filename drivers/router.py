"""HTTP routes of the drivers domain."""

from __future__ import annotations

from fastapi import APIRouter, status

from coop.auth import AccountCreated, Admin
from coop.dependencies import SessionDep
from drivers import service
from drivers.dependencies import CurrentDriver
from drivers.schemas import DriverCreate, DriverOut

router = APIRouter(prefix="/v1/drivers", tags=["drivers"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AccountCreated)
async def register_driver(body: DriverCreate, session: SessionDep, _: Admin) -> AccountCreated:
    """Registers a union member as a driver (admin only)."""
    driver, token = await service.create(session=session, data=body)
    return AccountCreated(id=driver.id, token=token)


@router.get("/me", response_model=DriverOut)
async def read_me(driver: CurrentDriver) -> DriverOut:
    return DriverOut.model_validate(driver)
