"""A rider's safety preferences (docs/safety.md): whether their pickups need a PIN, whether their
trips are shared on their own, and up to MAX_CONTACTS trusted contacts.

Read by the PIN at assignment (dispatch/trips/pin.py) and by trip sharing through
`load_safety_preferences`; written by `PATCH /v1/riders/me`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from coop.text import FreeText
from riders.models import RiderSafety

SafetyPolicy = Literal["always", "night", "never"]
POLICIES: tuple[SafetyPolicy, ...] = ("always", "night", "never")
MAX_CONTACTS = 5

# A phone number as people write it (E.164 once the separators are gone): an optional +, then
# 7 to 15 digits with spaces, dots, dashes or brackets between them.
Phone = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=7, max_length=24, pattern=r"^\+?[0-9][0-9 ().-]*[0-9]$"
    ),
]
# One address, no display name: the app writes to it, the service never does.
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        max_length=254,
        pattern=r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;.]{2,}$",
    ),
]
_SEPARATORS = re.compile(r"[ ().-]")


class TrustedContact(BaseModel):
    """Someone the account holder trusts to follow their trips: a name and a phone or email."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, FreeText(max_chars=100, multiline=False)]
    phone: Phone | None = Field(default=None, examples=["+1 514 555 0199"])
    email: Email | None = Field(default=None, examples=["rosa@example.org"])

    @model_validator(mode="after")
    def _reachable(self) -> TrustedContact:
        if self.phone is None and self.email is None:
            raise ValueError("a contact needs a phone or an email")
        if self.phone is not None:
            digits = _SEPARATORS.sub("", self.phone)
            if not 7 <= len(digits.lstrip("+")) <= 15:
                raise ValueError("a phone number has 7 to 15 digits")
            object.__setattr__(self, "phone", digits)
        return self


Contacts = Annotated[list[TrustedContact], Field(max_length=MAX_CONTACTS)]


class SafetyIn(BaseModel):
    """What a rider changes of their safety preferences: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    pin: SafetyPolicy | None = Field(
        default=None,
        description="Ask for a PIN at pickup: always, at night only (the agreement's "
        "safety.night_starts to night_ends, in the jurisdiction's time zone) or never; null: "
        "the co-op's default (the agreement's safety.pin_default)",
    )
    auto_share: SafetyPolicy | None = Field(
        default=None,
        description="Share each trip with your contacts by itself: always, at night, never "
        "(null: never)",
    )
    contacts: Contacts | None = Field(
        default=None,
        description=f"Your trusted contacts (at most {MAX_CONTACTS}), the whole list: it "
        "replaces the previous one",
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


def _policy(value: str | None) -> SafetyPolicy | None:
    for policy in POLICIES:
        if value == policy:
            return policy
    return None


def _of(row: RiderSafety | None) -> SafetyPreferences:
    if row is None:
        return NO_PREFERENCES
    return SafetyPreferences(
        pin=_policy(row.pin),
        auto_share=_policy(row.auto_share) or "never",
        contacts=tuple(TrustedContact.model_validate(contact) for contact in row.contacts),
    )


async def load_safety_preferences(session: AsyncSession, rider_id: uuid.UUID) -> SafetyPreferences:
    """The rider's safety preferences (the defaults for a rider who never chose)."""
    return _of(await session.get(RiderSafety, rider_id))


async def update(
    *, session: AsyncSession, rider_id: uuid.UUID, changes: SafetyIn, now: datetime
) -> SafetyPreferences:
    """Applies the fields the rider gave (`null` given resets a policy to its default); the
    caller commits."""
    row = await session.get(RiderSafety, rider_id, with_for_update=True)
    if row is None:
        row = RiderSafety(rider_id=rider_id, pin=None, auto_share=None, contacts=[])
        session.add(row)
    given = changes.model_fields_set
    if "pin" in given:
        row.pin = changes.pin
    if "auto_share" in given:
        row.auto_share = changes.auto_share
    if "contacts" in given:
        row.contacts = [contact.model_dump() for contact in changes.contacts or []]
    row.updated_at = now
    await session.flush()
    return _of(row)
