"""Writes the jurisdiction profile's schema and clause tables of docs/jurisdiction.md.

    python .ci/jurisdiction_schema.py          rewrite the tables between their markers
    python .ci/jurisdiction_schema.py --check  exit 1 if a table is not what the code says

`make jurisdiction-schema` (part of `make docs`) runs the first; a test runs the second, so a field
added to `coop/jurisdiction.py` or a figure changed in a profile without regenerating fails the
suite. The rendering of each field is the terms schema's (`.ci/terms_schema.py`), with one column
per profile that ships.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import terms_schema  # noqa: E402

from coop import jurisdiction  # noqa: E402

DOC = ROOT / "docs" / "jurisdiction.md"
SCHEMA = (
    "<!-- jurisdiction schema: generated from coop/jurisdiction.py (make jurisdiction-schema); "
    "do not edit -->",
    "<!-- /jurisdiction schema -->",
)
CLAUSES = (
    "<!-- jurisdiction clauses: generated from coop/data/jurisdictions (make jurisdiction-schema); "
    "do not edit -->",
    "<!-- /jurisdiction clauses -->",
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _keys() -> list[str]:
    """The shipped profiles, the default first."""
    default = jurisdiction.DEFAULT_JURISDICTION
    return [default, *(key for key in jurisdiction.available() if key != default)]


def schema_table() -> str:
    keys = _keys()
    wires = [jurisdiction.load(key).model_dump(mode="json") for key in keys]
    per_profile = [list(terms_schema._rows(jurisdiction.Profile, [], wire)) for wire in wires]
    lines = [
        SCHEMA[0],
        "| field | JSON type | accepted values | " + " | ".join(f"`{k}`" for k in keys) + " |",
        "|---|---|---|" + "---|" * len(keys),
    ]
    for rows in zip(*per_profile, strict=True):
        label, kind, values, _ = rows[0]
        # An item of a list is named by its key in the clause table above and in the file.
        shown = ["" if "[]" in label else row[3] for row in rows]
        cells = [label, kind, values or "any", *shown]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines.append(SCHEMA[1])
    return "\n".join(lines)


def _clauses(profile: jurisdiction.Profile) -> list[tuple[str, str, str]]:
    """(what, figure, clause) for every figure of `profile` that the law sets."""
    found: list[tuple[str, str, str]] = [
        (
            "consent to a maximum price",
            "required" if profile.consent.quote_required else "no",
            profile.consent.clause,
        ),
    ]
    if profile.fare_cap is not None:
        found.append(
            (
                "declared fare cap",
                f"at most × {profile.fare_cap.max_multiplier}",
                profile.fare_cap.clause,
            )
        )
    if profile.dues is not None:
        found.append(
            (
                f"{profile.dues.name.en} ({profile.dues.name.fr})",
                f"{profile.dues.amount} {profile.currency} a trip",
                profile.dues.clause,
            )
        )
    for tax in profile.taxes:
        found.append((f"{tax.name.en} ({tax.name.fr})", f"{tax.percent} %", tax.clause))
    for item in profile.qualifications:
        figure = f"valid {item.valid_days} days" if item.valid_days else "required"
        if item.when is not None:
            conditions = [
                f"{item.when.vehicle_age_years_at_least} years old"
                if item.when.vehicle_age_years_at_least is not None
                else "",
                f"{item.when.odometer_km_at_least} km" if item.when.odometer_km_at_least else "",
            ]
            figure += " for a car of " + " or ".join(c for c in conditions if c) + " or more"
        found.append((f"{item.subject}: {item.name.en}", figure, item.clause))
    for report in profile.reports:
        found.append(
            (
                f"report `{report.key}`",
                f"each {report.period}, {', '.join(report.formats)}",
                report.clause,
            )
        )
    return found


def clause_table() -> str:
    lines = [CLAUSES[0]]
    for key in _keys():
        profile = jurisdiction.load(key)
        lines += [
            "",
            f"**`{key}`** ({profile.name.en}, version {profile.version}): {profile.law.en}.",
            "",
            "| what | figure | clause |",
            "|---|---|---|",
        ]
        lines += [f"| {_cell(a)} | {_cell(b)} | {_cell(c)} |" for a, b, c in _clauses(profile)]
    lines += ["", CLAUSES[1]]
    return "\n".join(lines)


def _replace(doc: str, markers: tuple[str, str], block: str) -> str:
    start, end = doc.find(markers[0]), doc.find(markers[1])
    if start < 0 or end < start:
        raise SystemExit(f"{DOC.relative_to(ROOT)} has no block between {markers[0]!r} and its end")
    return doc[:start] + block + doc[end + len(markers[1]) :]


def updated(doc: str) -> str:
    return _replace(_replace(doc, SCHEMA, schema_table()), CLAUSES, clause_table())


def main(argv: list[Any]) -> int:
    doc = DOC.read_text(encoding="utf-8")
    fresh = updated(doc)
    if "--check" in argv:
        if fresh != doc:
            print(f"{DOC.relative_to(ROOT)} is out of date; run `make jurisdiction-schema`")
            return 1
        return 0
    if fresh != doc:
        DOC.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
