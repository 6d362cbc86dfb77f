"""The agreement's `pay` and `patronage` terms: strict, named when wrong, and read from versions
stored before they existed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from bargaining.terms import Terms, load_founding_terms, stored_terms, terms_to_wire
from tests.bargaining.strategies import founding_wire


def _errors(wire: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        Terms.model_validate(wire)
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in caught.value.errors()}


def test_the_founding_pay_and_patronage_terms() -> None:
    terms = load_founding_terms()
    assert (terms.pay.period_days, terms.pay.timezone) == (7, "America/Toronto")
    assert terms.pay.engaged_floor_per_hour == Decimal("24.00")
    assert (terms.patronage.basis, terms.patronage.reserve_percent) == (
        "engaged_seconds",
        Decimal("30"),
    )
    assert terms_to_wire(terms)["pay"]["engaged_floor_per_hour"] == "24.00"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("pay", "period_days"), 10, "pay.period_days"),
        (("pay", "period_days"), "7", "pay.period_days"),
        (("pay", "timezone"), "Mars/Olympus_Mons", "pay.timezone"),
        (("pay", "timezone"), "", "pay.timezone"),
        (("pay", "engaged_floor_per_hour"), 24.5, "pay.engaged_floor_per_hour"),
        (("pay", "engaged_floor_per_hour"), "-1.00", "pay.engaged_floor_per_hour"),
        (("pay", "surprise"), 1, "pay.surprise"),
        (("patronage", "basis"), "hours", "patronage.basis"),
        (("patronage", "reserve_percent"), "101", "patronage.reserve_percent"),
    ],
)
def test_bad_pay_and_patronage_terms_are_named(
    path: tuple[str, str], value: object, field: str
) -> None:
    wire = founding_wire()
    wire[path[0]][path[1]] = value
    assert field in _errors(wire)


def test_a_version_stored_before_the_pay_terms_reads_the_founding_ones() -> None:
    stored = founding_wire()
    del stored["pay"], stored["patronage"]
    assert "pay" in _errors(stored)  # a new proposal must give them
    terms = stored_terms(stored)
    assert terms.pay == load_founding_terms().pay
    assert terms.patronage == load_founding_terms().patronage
