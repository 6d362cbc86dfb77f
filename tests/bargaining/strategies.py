"""Hypothesis strategies for valid terms, and helpers to build terms from the founding ones."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from bargaining.terms import Terms, load_founding_terms, terms_to_wire


def founding_wire() -> dict[str, Any]:
    """A fresh, mutable copy of the founding terms as JSON values."""
    return copy.deepcopy(terms_to_wire(load_founding_terms()))


def terms_with(**changes: Any) -> Terms:
    """The founding terms with dotted paths replaced: terms_with(**{"commission.cap": None})."""
    wire = founding_wire()
    for path, value in changes.items():
        node = wire
        *parents, leaf = path.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return Terms.model_validate(wire)


def _amount(max_value: str, places: int = 2) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=Decimal(0), max_value=Decimal(max_value), places=places, allow_nan=False
    )


@st.composite
def valid_terms(draw: st.DrawFn) -> Terms:
    """Any terms the schema accepts, over the ranges that matter to pricing."""
    wire = founding_wire()
    floor_km = draw(_amount("3", 4))
    floor_min = draw(_amount("2", 4))
    wire["driver_floor"] = {"per_km": str(floor_km), "per_minute": str(floor_min)}
    wire["fares"] = {
        "standard": {
            "base": str(draw(_amount("20"))),
            "per_km": str(floor_km + draw(_amount("3", 4))),
            "per_minute": str(floor_min + draw(_amount("2", 4))),
            "minimum": str(draw(_amount("40"))),
            "max_over_quote_percent": "50",
        }
    }
    cap = draw(st.none() | _amount("30"))
    wire["commission"] = {
        "percent": str(draw(_amount("100"))),
        "cap": None if cap is None else str(cap),
    }
    return Terms.model_validate(wire)
