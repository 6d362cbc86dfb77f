"""Amounts of money, in `Decimal`: the cent, rounding to it, and refusing a binary float.

One home for what the agreement's terms, the fares, the pay statements, the jurisdiction's dues
and taxes, and the declared fare caps all need: an amount is given as a decimal string ("1.05"),
never a number with a fraction (a binary float cannot hold 1.05 exactly), and rounded half up to
the cent where it is rounded.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from pydantic_core import PydanticCustomError

from coop.messages import N_

CENT = Decimal("0.01")


def round_cents(amount: Decimal) -> Decimal:
    """Half-up to the cent: 0.125 -> 0.13, 0.124 -> 0.12."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def refuse_float(value: object) -> object:
    """A pydantic before-validator: a JSON or YAML number with a fraction (or a boolean) is
    refused, naming the field; a decimal string or an integer passes."""
    if isinstance(value, bool | float):
        raise PydanticCustomError(
            "decimal_string",
            N_('Give the amount as a decimal string such as "1.05", not a number with a fraction'),
        )
    return value
