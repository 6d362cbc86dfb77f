"""A path-level diff between two sets of terms: what a member needs to see to decide."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bargaining.terms import Terms, terms_to_wire

_MISSING: Any = object()


@dataclass(frozen=True)
class Change:
    path: str  # dotted, as in the 422 errors: "fares.standard.per_km"
    before: Any  # JSON values; None where the path did not exist
    after: Any

    def to_wire(self) -> dict[str, Any]:
        return {"path": self.path, "from": self.before, "to": self.after}


def _leaves(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_leaves(item, f"{prefix}.{key}" if prefix else key))
        return out
    return {prefix: value}


def diff_values(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Every leaf whose value differs, sorted by path; lists are compared whole."""
    old, new = _leaves(before, ""), _leaves(after, "")
    changes = []
    for path in sorted(old.keys() | new.keys()):
        a, b = old.get(path, _MISSING), new.get(path, _MISSING)
        if a is _MISSING or b is _MISSING or a != b:
            changes.append(Change(path, None if a is _MISSING else a, None if b is _MISSING else b))
    return changes


def diff_terms(before: Terms, after: Terms) -> list[Change]:
    """The changes from `before` to `after`, on the wire form (decimals as canonical strings)."""
    return diff_values(terms_to_wire(before), terms_to_wire(after))
