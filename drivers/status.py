"""Membership status changes: only a person, through a recorded decision with a written reason.

This is the one code path that writes `driver.status`. It is an admin action; every change is kept
as a row with its reason and entered in the audit log (the log names the change, not the person).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from coop import audit
from coop.auth import Admin
from coop.clock import Now
from coop.dependencies import SessionDep
from coop.errors import Conflict, NotFound
from coop.text import FreeText
from drivers.models import (
    REASON_MAX_CHARS,
    Driver,
    DriverStatus,
    DriverStatusChange,
    status_lock_key,
)
from drivers.service import list_changes

AUDIT_KIND = "driver_status_change"


class StatusUnchanged(Conflict):
    type = "status_unchanged"
    title = "The driver already has this status"


class StatusChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: DriverStatus
    reason: Annotated[str, FreeText(max_chars=REASON_MAX_CHARS)]


class StatusChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    driver_id: uuid.UUID
    from_status: DriverStatus
    to_status: DriverStatus
    reason: str
    changed_at: datetime


async def change_status(
    *,
    session: AsyncSession,
    driver_id: uuid.UUID,
    status: DriverStatus,
    reason: str,
    now: datetime,
) -> DriverStatusChange:
    """Sets a driver's status for a written reason, with its audit entry, in one transaction."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:key)"), {"key": status_lock_key(driver_id)}
    )
    current = await session.scalar(
        select(Driver.status).where(Driver.id == driver_id).with_for_update()
    )
    if current is None:
        raise NotFound(f"No driver {driver_id}")
    if current is status:
        await session.rollback()
        raise StatusUnchanged(f"Driver {driver_id} is already {status.value}")
    await session.execute(
        update(Driver)
        .where(Driver.id == driver_id)
        .values(status=status)
        .execution_options(synchronize_session=False)
    )
    change = DriverStatusChange(
        id=uuid.uuid4(),
        driver_id=driver_id,
        from_status=current,
        to_status=status,
        reason=reason,
        changed_at=now,
    )
    session.add(change)
    await session.flush()
    # The log names the recorded decision, never the driver or the reason's words.
    await audit.append(
        session=session,
        kind=AUDIT_KIND,
        subject=f"driver_status_change:{change.id}",
        content={
            "status_change_id": str(change.id),
            "from_status": current.value,
            "to_status": status.value,
        },
        at=now,
    )
    await session.commit()
    return change


router = APIRouter(prefix="/v1/drivers", tags=["drivers"])


@router.post("/{driver_id}/status", response_model=StatusChangeOut)
async def set_status(
    driver_id: uuid.UUID, body: StatusChangeIn, session: SessionDep, _: Admin, now: Now
) -> StatusChangeOut:
    """Changes a driver's membership status (admin only, with a written reason)."""
    change = await change_status(
        session=session, driver_id=driver_id, status=body.status, reason=body.reason, now=now
    )
    return StatusChangeOut.model_validate(change)


@router.get("/{driver_id}/status-changes", response_model=list[StatusChangeOut])
async def read_status_changes(
    driver_id: uuid.UUID, session: SessionDep, _: Admin
) -> list[StatusChangeOut]:
    """The recorded status decisions about one driver (admin only)."""
    return [
        StatusChangeOut.model_validate(change)
        for change in await list_changes(session=session, driver_id=driver_id)
    ]
