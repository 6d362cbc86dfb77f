"""docs/agreement.md is true to the code: the terms schema table is what bargaining/terms.py's
models say, and every figure of the fare examples (and of docs/protocol.md's example trip) is
what bargaining/fares.py computes."""

from __future__ import annotations

import importlib.util
import math
import re
from decimal import Decimal, localcontext
from pathlib import Path
from types import ModuleType

from bargaining.fares import QUOTE_SPEED_MPS, price_trip
from bargaining.terms import Terms, load_founding_terms
from coop.money import round_cents

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "agreement.md"
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("terms_schema", ROOT / ".ci" / "terms_schema.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _block(text: str, begin: str, end: str) -> str:
    start = text.index(begin)
    return text[text.index("\n", start) + 1 : text.index(end, start)]


def _shown(value: Decimal) -> str:
    """An unrounded figure as the doc writes it: exact up to four places, else cut with `…`."""
    exact = value.normalize()
    if -exact.as_tuple().exponent <= 4:  # type: ignore[operator]
        return f"{exact:f}"
    return f"{value.quantize(Decimal('0.0001'), rounding='ROUND_DOWN'):f}…"


def _figures(terms: Terms, distance_m: int, duration_s: int) -> dict[str, Decimal]:
    """Every figure of one trip: the terms it uses, the intermediate steps, and price_trip's."""
    fare = terms.fares["standard"]
    floor_terms = terms.driver_floor
    with localcontext() as context:
        context.prec = 50
        km, minutes = Decimal(distance_m) / 1000, Decimal(duration_s) / 60
        priced = price_trip(
            terms,
            agreement_version=1,
            service_class="standard",
            distance_m=distance_m,
            duration_s=duration_s,
        )
        floor_km, floor_minutes = floor_terms.per_km * km, floor_terms.per_minute * minutes
        floor = round_cents(floor_km + floor_minutes)
        return {
            "km": km,
            "minutes": minutes,
            "by_km": fare.per_km * km,
            "by_minute": fare.per_minute * minutes,
            "metered": fare.base + fare.per_km * km + fare.per_minute * minutes,
            "total": priced.total,
            "floor_km": floor_km,
            "floor_minutes": floor_minutes,
            "floor_exact": floor_km + floor_minutes,
            "floor": floor,
            "percent_of_total": terms.commission.percent * priced.total / 100,
            "room": priced.total - floor,
            "commission": priced.coop_commission,
            "earnings": priced.driver_earnings,
        }


def test_the_terms_schema_table_is_generated_from_the_models() -> None:
    doc = DOC.read_text(encoding="utf-8")
    script = _script()
    assert script.updated(doc) == doc, "run `make agreement-schema`"
    # Every field of the models has its row.
    table = _block(doc, script.BEGIN, script.END)
    for section, model in Terms.model_fields.items():
        assert f"| `{section}` |" in table
        annotation = model.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            for name in annotation.model_fields:
                assert f"| `{section}.{name}` |" in table


def test_the_worked_examples_table_is_what_the_fare_engine_computes() -> None:
    doc = DOC.read_text(encoding="utf-8")
    rows = _block(doc, "<!-- worked examples:", "<!-- /worked examples -->").splitlines()[2:]
    assert len(rows) >= 3
    terms = load_founding_terms()
    for row in rows:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        _, distance, duration, metered, total, floor, share, commission, earnings = cells
        got = _figures(terms, int(distance), int(duration))
        assert [metered, total, floor, share, commission, earnings] == [
            _shown(got["metered"]),
            f"{got['total']:f}",
            f"{got['floor']:f}",
            _shown(got["percent_of_total"]),
            f"{got['commission']:f}",
            f"{got['earnings']:f}",
        ], row


def test_every_figure_of_the_step_by_step_example_is_one_the_engine_gives() -> None:
    doc = DOC.read_text(encoding="utf-8")
    begin = "<!-- worked example:"
    header = doc[doc.index(begin) : doc.index("-->", doc.index(begin))]
    distance_m, duration_s = (int(n) for n in re.findall(r"(\d+) [ms]\b", header))
    steps = _block(doc, begin, "<!-- /worked example -->")
    terms = load_founding_terms()
    got = _figures(terms, distance_m, duration_s)
    fare = terms.fares["standard"]
    known = {value.normalize() for value in got.values()} | {
        value.normalize()
        for value in (
            fare.base,
            fare.per_km,
            fare.per_minute,
            fare.minimum,
            terms.driver_floor.per_km,
            terms.driver_floor.per_minute,
            terms.commission.percent,
            terms.commission.cap or Decimal(0),
        )
    }
    written = [Decimal(n) for n in _NUMBER.findall(steps)]
    assert written, "the step-by-step example has no figures"
    assert [n for n in written if n.normalize() not in known] == []
    # And it ends with what the driver earns.
    assert written[-1] == got["earnings"]


def test_the_protocol_example_trip_is_priced_by_the_founding_agreement() -> None:
    protocol = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    terms = load_founding_terms()
    fields = r'"(\w+)": ("[^"]*"|\d+)'
    for name in ("quote", "fare"):
        body = re.search(rf'"{name}": \{{([^}}]*)\}}', protocol)
        assert body is not None, name
        shown = {key: value.strip('"') for key, value in re.findall(fields, body.group(1))}
        priced = price_trip(
            terms,
            agreement_version=1,
            service_class="standard",
            distance_m=int(shown["distance_m"]),
            duration_s=int(shown["duration_s"]),
        )
        assert shown["total"] == f"{priced.total:f}", name
        if name == "fare":
            assert shown["driver_earnings"] == f"{priced.driver_earnings:f}"
            assert shown["coop_commission"] == f"{priced.coop_commission:f}"
        else:  # a quote's duration is its distance at the quote's speed
            assert int(shown["duration_s"]) == math.ceil(
                Decimal(shown["distance_m"]) / QUOTE_SPEED_MPS
            )
