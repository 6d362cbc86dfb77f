"""A driver's trip sharing, for their own safety (docs/safety.md, "Share my trip"): whether
their trips are shared by themselves (always, at night, never) and up to MAX_CONTACTS trusted
contacts, validated and updated by the same rules as a rider's (coop/trusted_contacts.py).

Read by sharing at assignment (dispatch/realtime/state.py) through `load_sharing`; written by
`PATCH /v1/drivers/me/safety`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from coop.trusted_contacts import (
    SafetyPolicy,
    SharingIn,
    TrustedContact,
    apply_sharing,
    auto_share_of,
    contacts_of,
)
from drivers.models import DriverSafety


class SharingOut(BaseModel):
    auto_share: SafetyPolicy
    contacts: list[TrustedContact]


@dataclass(frozen=True)
class SharingPreferences:
    """A driver's choices as stored."""

    auto_share: SafetyPolicy
    contacts: tuple[TrustedContact, ...]

    def out(self) -> SharingOut:
        return SharingOut(auto_share=self.auto_share, contacts=list(self.contacts))


NO_SHARING = SharingPreferences(auto_share="never", contacts=())


def _of(row: DriverSafety | None) -> SharingPreferences:
    if row is None:
        return NO_SHARING
    return SharingPreferences(auto_share=auto_share_of(row), contacts=contacts_of(row))


async def load_sharing(session: AsyncSession, driver_id: uuid.UUID) -> SharingPreferences:
    """The driver's sharing choices (never, and no contacts, for a driver who never chose)."""
    return _of(await session.get(DriverSafety, driver_id))


async def update(
    *, session: AsyncSession, driver_id: uuid.UUID, changes: SharingIn, now: datetime
) -> SharingPreferences:
    """Applies the fields the driver gave (`auto_share: null` resets it to never); the caller
    commits."""
    # The row made first if missing, then locked: two first changes at once both land, one
    # after the other, instead of one failing on the other's insert.
    await session.execute(
        insert(DriverSafety)
        .values(driver_id=driver_id, auto_share=None, contacts=[], updated_at=now)
        .on_conflict_do_nothing(index_elements=[DriverSafety.driver_id])
    )
    row = await session.get(DriverSafety, driver_id, with_for_update=True, populate_existing=True)
    assert row is not None  # made above, and a driver's row is only ever deleted with them
    apply_sharing(row, changes, changes.model_fields_set)
    row.updated_at = now
    await session.flush()
    return _of(row)
