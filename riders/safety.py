"""A rider's safety preferences (docs/safety.md): whether their pickups need a PIN, whether their
trips are shared on their own, and up to MAX_CONTACTS trusted contacts.

Read by the PIN at assignment (dispatch/trips/pin.py) and by trip sharing through
`load_safety_preferences`; written by `PATCH /v1/riders/me`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

# The validation and the update rules are the kernel's, shared with the drivers' accounts;
# they are named here too for the modules that read a rider's choices.
from coop.trusted_contacts import (
    MAX_CONTACTS,
    POLICIES,
    Contacts,
    SafetyPolicy,
    SharingIn,
    TrustedContact,
    apply_sharing,
    auto_share_of,
    contacts_of,
    policy_of,
)
from riders.models import RiderSafety

__all__ = [
    "MAX_CONTACTS",
    "NO_PREFERENCES",
    "POLICIES",
    "Contacts",
    "SafetyIn",
    "SafetyOut",
    "SafetyPolicy",
    "SafetyPreferences",
    "TrustedContact",
    "load_safety_preferences",
    "update",
]


class SafetyIn(SharingIn):
    """What a rider changes of their safety preferences: only the fields given change."""

    pin: SafetyPolicy | None = Field(
        default=None,
        description="Ask for a PIN at pickup: always, at night only (the agreement's "
        "safety.night_starts to night_ends, in the jurisdiction's time zone) or never; null: "
        "the co-op's default (the agreement's safety.pin_default)",
    )


class SafetyOut(BaseModel):
    pin: SafetyPolicy | None = Field(
        description="Your PIN choice; null: the co-op's default (safety.pin_default)"
    )
    auto_share: SafetyPolicy
    contacts: list[TrustedContact]


@dataclass(frozen=True)
class SafetyPreferences:
    """A rider's choices as stored; `pin` None means the co-op's default."""

    pin: SafetyPolicy | None
    auto_share: SafetyPolicy
    contacts: tuple[TrustedContact, ...]

    def out(self) -> SafetyOut:
        return SafetyOut(pin=self.pin, auto_share=self.auto_share, contacts=list(self.contacts))


NO_PREFERENCES = SafetyPreferences(pin=None, auto_share="never", contacts=())


def _of(row: RiderSafety | None) -> SafetyPreferences:
    if row is None:
        return NO_PREFERENCES
    return SafetyPreferences(
        pin=policy_of(row.pin), auto_share=auto_share_of(row), contacts=contacts_of(row)
    )


async def load_safety_preferences(session: AsyncSession, rider_id: uuid.UUID) -> SafetyPreferences:
    """The rider's safety preferences (the defaults for a rider who never chose)."""
    return _of(await session.get(RiderSafety, rider_id))


async def update(
    *, session: AsyncSession, rider_id: uuid.UUID, changes: SafetyIn, now: datetime
) -> SafetyPreferences:
    """Applies the fields the rider gave (`null` given resets a policy to its default); the
    caller commits."""
    # The row made first if missing, then locked: two first changes at once both land, one
    # after the other, instead of one failing on the other's insert.
    await session.execute(
        insert(RiderSafety)
        .values(rider_id=rider_id, pin=None, auto_share=None, contacts=[], updated_at=now)
        .on_conflict_do_nothing(index_elements=[RiderSafety.rider_id])
    )
    row = await session.get(RiderSafety, rider_id, with_for_update=True, populate_existing=True)
    assert row is not None  # made above, and a rider's row is only ever deleted with them
    given = changes.model_fields_set
    if "pin" in given:
        row.pin = changes.pin
    apply_sharing(row, changes, given)
    row.updated_at = now
    await session.flush()
    return _of(row)
