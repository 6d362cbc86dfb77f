"""A driver's qualification register, as a section of their export."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from drivers.models import DriverQualification, DriverRegisterEntry, DriverVehicle
from drivers.qualifications import QUALIFICATION_FACTS, VEHICLE_FACTS


async def qualification(*, session: AsyncSession, driver_id: uuid.UUID) -> dict[str, Any]:
    """The facts an operator recorded about the driver and their car (dates, numbers,
    outcome), as kept."""
    record = await session.get(DriverQualification, driver_id)
    vehicle = await session.get(DriverVehicle, driver_id)
    entries = await session.scalars(
        select(DriverRegisterEntry)
        .where(DriverRegisterEntry.driver_id == driver_id)
        .order_by(DriverRegisterEntry.recorded_at, DriverRegisterEntry.id)
    )
    return {
        "recorded": [
            {"kind": entry.kind, "facts": entry.facts, "recorded_at": entry.recorded_at}
            for entry in entries
        ],
        "driver": None
        if record is None
        else {
            **{name: getattr(record, name) for name in QUALIFICATION_FACTS},
            "recorded_at": record.recorded_at,
        },
        "vehicle": None
        if vehicle is None
        else {name: getattr(vehicle, name) for name in VEHICLE_FACTS},
    }
