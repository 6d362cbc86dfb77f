"""Trusted contacts and the trip-sharing policy, alike for riders and drivers (docs/safety.md):
up to MAX_CONTACTS people an account holder trusts to follow their trips, and whether their
trips are shared by themselves (always, at night, never).

The kernel keeps the validation and the rules of an update so that the riders' and the drivers'
accounts (sibling domains that never import each other) apply the very same ones; each domain
keeps its own table (riders/safety.py, drivers/safety.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from coop.text import FreeText

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


class SharingIn(BaseModel):
    """What an account holder changes of their sharing: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

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


class SharingRow(Protocol):
    """The columns every account's safety table has (`rider_safety`, `driver_safety`)."""

    auto_share: str | None
    contacts: list[dict[str, Any]]


def policy_of(value: str | None) -> SafetyPolicy | None:
    """A stored policy, typed; None for none (or one this version does not know)."""
    for policy in POLICIES:
        if value == policy:
            return policy
    return None


def auto_share_of(row: SharingRow | None) -> SafetyPolicy:
    return (policy_of(row.auto_share) if row is not None else None) or "never"


def contacts_of(row: SharingRow | None) -> tuple[TrustedContact, ...]:
    if row is None:
        return ()
    return tuple(TrustedContact.model_validate(contact) for contact in row.contacts)


def apply_sharing(row: SharingRow, changes: SharingIn, given: Iterable[str]) -> None:
    """Writes the sharing fields given (`auto_share: null` resets the policy to never;
    `contacts` replaces the whole list)."""
    fields = set(given)
    if "auto_share" in fields:
        row.auto_share = changes.auto_share
    if "contacts" in fields:
        row.contacts = [contact.model_dump() for contact in changes.contacts or []]
