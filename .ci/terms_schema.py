"""Writes the terms schema of docs/agreement.md from the pydantic models of bargaining/terms.py.

    python .ci/terms_schema.py          rewrite the table between the schema markers
    python .ci/terms_schema.py --check  exit 1 if the table is not what the models say

`make agreement-schema` runs the first; a test runs the second, so a term added to the models
without regenerating the table fails the suite. Every field is listed with its JSON type, the
values it accepts and the founding agreement's value; the rules between fields are written by hand
below the table (they live in `invariant_violations`, code this script cannot read).
"""

from __future__ import annotations

import enum
import sys
import types
import typing
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import BaseModel  # noqa: E402
from pydantic.fields import FieldInfo  # noqa: E402

from bargaining.terms import Terms, load_founding_terms, money_str, terms_to_wire  # noqa: E402

DOC = ROOT / "docs" / "agreement.md"
BEGIN = (
    "<!-- terms schema: generated from bargaining/terms.py (make agreement-schema); do not edit -->"
)
END = "<!-- /terms schema -->"
CONSTRAINTS = (
    "ge",
    "gt",
    "le",
    "lt",
    "min_length",
    "max_length",
    "pattern",
    "max_digits",
    "decimal_places",
)


def _constraints(metadata: list[Any]) -> dict[str, Any]:
    """The constraints in a field's metadata, however pydantic or annotated-types wraps them."""
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            found.update(_constraints(list(item.metadata)))
            continue
        for key in CONSTRAINTS:
            value = getattr(item, key, None)
            if value is not None:
                found[key] = value
        if getattr(item, "func", None) is money_str:
            found["money"] = True
    return found


def _number(value: Any) -> str:
    """Thousands apart with a thin space: 100 000, 9 999 999.99."""
    if isinstance(value, int | Decimal):
        return f"{value:,}".replace(",", "\u2009")
    return str(value)


def _range(c: dict[str, Any]) -> str:
    low = ("at least", c["ge"]) if "ge" in c else ("above", c["gt"]) if "gt" in c else None
    high = ("at most", c["le"]) if "le" in c else ("below", c["lt"]) if "lt" in c else None
    if high is None and "max_digits" in c:  # the most the digits allow
        places = c.get("decimal_places", 0)
        largest = Decimal(10) ** (c["max_digits"] - places) - Decimal(10) ** -places
        high = ("at most", largest)
    if low and high and low[0] == "at least" and high[0] == "at most":
        return f"{_number(low[1])} to {_number(high[1])}"
    return " and ".join(f"{bound[0]} {_number(bound[1])}" for bound in (low, high) if bound)


def _length(c: dict[str, Any], unit: str) -> str:
    low, high = c.get("min_length"), c.get("max_length")
    if low and high:
        return f"{low} to {high} {unit}"
    if high is not None:
        return f"at most {high} {unit}"
    if low:
        return f"at least {low} {unit}"
    return ""


def _split(annotation: Any) -> tuple[Any, list[Any]]:
    """The bare type of an annotation and the metadata `Annotated` wrapped around it."""
    if get_origin(annotation) is Annotated:
        bare, *metadata = get_args(annotation)
        return bare, metadata
    return annotation, []


def _optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        arms = [arm for arm in get_args(annotation) if arm is not type(None)]
        if len(arms) == 1 and len(arms) < len(get_args(annotation)):
            return arms[0], True
    return annotation, False


def _scalar(bare: Any, c: dict[str, Any]) -> tuple[str, str]:
    """(JSON type, the values accepted) of a leaf type."""
    if bare is Decimal:
        places = c.get("decimal_places")
        what = "amount" if c.get("money") else "number"
        parts = [_range(c), f"at most {places} decimal places" if places is not None else ""]
        return f"{what}, as a decimal string", "; ".join(p for p in parts if p)
    if bare is bool:
        return "boolean", "`true` or `false`"
    if bare is int:
        return "integer", _range(c)
    if bare is str:
        parts = [f"matches `{c['pattern']}`" if "pattern" in c else "", _length(c, "characters")]
        return "string", "; ".join(p for p in parts if p)
    if get_origin(bare) is Literal:
        return "string", "one of " + ", ".join(f"`{v}`" for v in get_args(bare))
    if isinstance(bare, type) and issubclass(bare, enum.Enum):
        return "string", "one of " + ", ".join(f"`{m.value}`" for m in bare)
    raise TypeError(f"no rendering for {bare!r}: teach .ci/terms_schema.py this type")


def _founding(wire: Any, path: list[str]) -> str:
    """The founding value at `path` ('*' stands for every key of a map)."""
    values: list[tuple[str, Any]] = [("", wire)]
    for step in path:
        nxt: list[tuple[str, Any]] = []
        for key, value in values:
            if step == "[]" and isinstance(value, list):
                for index, item in enumerate(value):
                    name = (item.get("key") or item.get("code")) if isinstance(item, dict) else None
                    nxt.append((str(name or index), item))
                continue
            if not isinstance(value, dict):
                continue
            if step == "*":
                nxt.extend((k, v) for k, v in value.items())
            elif step in value:
                nxt.append((key, value[step]))
        values = nxt
    if not values:
        return "absent"

    def show(value: Any) -> str:
        if value is None:
            return "none"
        if isinstance(value, bool):
            return f"`{str(value).lower()}`"
        if isinstance(value, dict):
            return ""
        if isinstance(value, list):
            return ", ".join(f"`{v}`" for v in value) or "none"
        return f"`{value}`"

    shown = [(key, show(value)) for key, value in values]
    if len({text for _, text in shown}) == 1:
        keys = ", ".join(key for key, _ in shown)
        return shown[0][1] + (f" ({keys})" if len(shown) > 1 and shown[0][1] else "")
    return "; ".join(f"{key}: {text}" for key, text in shown)


Row = tuple[str, str, str, str]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _count(wire: Any, path: list[str]) -> str:
    """How many items a list holds in `wire` ("none" for an empty or absent one)."""
    values: list[Any] = [wire]
    for step in path:
        values = [v[step] for v in values if isinstance(v, dict) and v.get(step) is not None]
    sizes = [len(v) for v in values if isinstance(v, list)]
    if not sizes or not any(sizes):
        return "none"
    return f"{sizes[0]} items" if sizes[0] != 1 else "1 item"


def _rows(model: type[BaseModel], prefix: list[str], wire: Any) -> Iterator[Row]:
    hints = typing.get_type_hints(model, include_extras=True)
    for name, field in model.model_fields.items():
        path = [*prefix, name]
        bare, outer = _split(hints[name])
        bare, nullable = _optional(bare)
        bare, inner = _split(bare)
        c = _constraints(list(field.metadata) + outer + inner)
        notes: list[str] = []
        if not field.is_required():
            default = field.get_default(call_default_factory=True)
            if default is None:
                notes.append("optional: absent or `null` means none")
            else:
                notes.append(f"optional, default `{default}`")
        elif nullable:
            notes.append("may be `null`")
        if field.description:
            notes.append(field.description)
        label = "`" + ".".join(path) + "`"
        origin = get_origin(bare)
        if isinstance(bare, type) and issubclass(bare, BaseModel):
            yield label, "object", "; ".join(["the fields below, no others", *notes]), ""
            yield from _rows(bare, path, wire)
        elif origin is dict:
            key_type, value_type = get_args(bare)
            key_bare, key_meta = _split(key_type)
            _, key_values = _scalar(key_bare, _constraints(key_meta))
            value_bare, _ = _split(value_type)
            allowed = [f"keys: {key_values}", _length(c, "entries"), *notes]
            yield label, "object (a map)", "; ".join(a for a in allowed if a), ""
            child = [*path, "<key>"]
            if isinstance(value_bare, type) and issubclass(value_bare, BaseModel):
                child_rows = _rows(value_bare, child, wire)
                for row_label, kind, values, _ in child_rows:
                    steps = row_label.strip("`").replace("<key>", "*").split(".")
                    yield row_label, kind, values, _founding(wire, steps)
            else:
                kind, values = _scalar(value_bare, _constraints(_split(value_type)[1]))
                yield "`" + ".".join(child) + "`", kind, values, _founding(wire, [*path, "*"])
        elif origin is list and _is_model(_split(get_args(bare)[0])[0]):
            item_bare = _split(get_args(bare)[0])[0]
            allowed = ["each item: an object with the fields below", _length(c, "items"), *notes]
            yield label, "array", "; ".join(a for a in allowed if a), _count(wire, path)
            yield from _rows(item_bare, [*path, "[]"], wire)
        elif origin is list:
            (item_type,) = get_args(bare)
            item_bare, item_meta = _split(item_type)
            kind, values = _scalar(item_bare, _constraints(item_meta))
            item = f"each item: {kind}" + (f", {values}" if values else "")
            allowed = "; ".join(a for a in [item, _length(c, "items"), *notes] if a)
            yield label, "array", allowed, _founding(wire, path)
        else:
            kind, values = _scalar(bare, c)
            yield label, kind, "; ".join(v for v in [values, *notes] if v), _founding(wire, path)


def table() -> str:
    wire = terms_to_wire(load_founding_terms())
    lines = [
        BEGIN,
        "| term | JSON type | accepted values | founding agreement |",
        "|---|---|---|---|",
    ]
    for label, kind, values, founding in _rows(Terms, [], wire):
        cells = [label, kind, values or "any", founding]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines.append(END)
    return "\n".join(lines)


def updated(doc: str) -> str:
    start, end = doc.find(BEGIN), doc.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{DOC.relative_to(ROOT)} has no block between the terms schema markers")
    return doc[:start] + table() + doc[end + len(END) :]


def main(argv: list[str]) -> int:
    doc = DOC.read_text(encoding="utf-8")
    fresh = updated(doc)
    if "--check" in argv:
        if fresh != doc:
            print(
                f"{DOC.relative_to(ROOT)}: the terms schema is out of date; "
                "run `make agreement-schema`"
            )
            return 1
        return 0
    if fresh != doc:
        DOC.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
