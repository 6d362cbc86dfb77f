"""What the law adds to a fare: the per-trip dues and the sales taxes of the jurisdiction profile.

The fare is the agreement's (the members'); the dues and the taxes are the law's, collected for
the government and remitted by the co-op. None of them goes into the co-op's commission or the
driver's earnings. Each tax is computed on its own from the taxable base (the fare, plus the dues
where the profile says they are taxable) and rounded to the cent, half up: Québec's QST is not
charged on the GST since 2013, so the two never compound.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from coop.jurisdiction import Named, Profile
from coop.money import round_cents

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Levy:
    """One line the law adds: the dues, or one tax with its rate and the co-op's number."""

    kind: Literal["dues", "tax"]
    code: str
    name: Named
    amount: Decimal
    percent: Decimal | None = None
    registration: str | None = None


@dataclass(frozen=True, slots=True)
class Charges:
    """A fare and what the law adds to it; `total` is what the rider is billed."""

    fare: Decimal
    levies: tuple[Levy, ...]

    @property
    def dues(self) -> Decimal:
        return sum((levy.amount for levy in self.levies if levy.kind == "dues"), Decimal(0))

    @property
    def taxes(self) -> tuple[Levy, ...]:
        return tuple(levy for levy in self.levies if levy.kind == "tax")

    @property
    def total(self) -> Decimal:
        return self.fare + sum((levy.amount for levy in self.levies), Decimal(0))


def charges(
    profile: Profile, fare: Decimal, registrations: dict[str, str] | None = None
) -> Charges:
    """The fare (whole cents, never negative) with the dues and taxes of `profile`."""
    if fare < 0 or fare != round_cents(fare):
        raise ValueError(f"a fare is whole cents and never negative, not {fare}")
    levies: list[Levy] = []
    base = fare
    if profile.dues is not None:
        levies.append(Levy("dues", "dues", profile.dues.name, profile.dues.amount))
        if profile.dues.taxable:
            base += profile.dues.amount
    for tax in profile.taxes:
        levies.append(
            Levy(
                "tax",
                tax.code,
                tax.name,
                round_cents(base * tax.percent / HUNDRED),
                percent=tax.percent,
                registration=(registrations or {}).get(tax.code),
            )
        )
    return Charges(fare, tuple(levies))
