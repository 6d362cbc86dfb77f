"""The jurisdiction profile: the law's figures as validated data, one file per jurisdiction, its
tables in docs/jurisdiction.md generated from the code, and the settings that go with it."""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from coop import jurisdiction, levies
from coop.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
REGISTERED = {"gst": "123456789RT0001", "qst": "1234567890TQ0001"}


def _quebec() -> dict[str, Any]:
    text = (jurisdiction.PROFILES_DIR / "quebec.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def test_quebec_carries_the_laws_figures() -> None:
    quebec = jurisdiction.load("quebec")
    assert quebec.consent.quote_required
    assert quebec.dues is not None and quebec.dues.amount == Decimal("0.90")
    assert quebec.dues.name.in_language("fr-CA") == "Redevance"
    assert [(tax.code, tax.percent) for tax in quebec.taxes] == [
        ("gst", Decimal("5")),
        ("qst", Decimal("9.975")),
    ]
    assert quebec.fare_cap is not None and quebec.fare_cap.max_multiplier == 3
    assert {item.key for item in quebec.qualifications_of("vehicle")} == {
        "vehicle_identity",
        "mechanical_inspection",
    }
    assert quebec.trip_record_retention_years == 3
    monthly = quebec.report("trips_monthly")
    assert monthly is not None and "amount_billed" in [c.key for c in monthly.columns]
    every_clause = [quebec.consent.clause, quebec.dues.clause]
    every_clause += [tax.clause for tax in quebec.taxes]
    every_clause += [item.clause for item in quebec.qualifications]
    every_clause += [report.clause for report in quebec.reports]
    assert all(clause.strip() and clause != "none" for clause in every_clause)


def test_another_jurisdiction_is_a_file_not_code() -> None:
    assert jurisdiction.available() == ["none", "quebec"]
    none = jurisdiction.load("none")
    assert none.dues is None and none.taxes == [] and none.reports == []
    assert not none.consent.quote_required


@pytest.mark.parametrize("key", ["ontario", "../quebec", "Quebec", "", "quebec.yaml"])
def test_an_unknown_jurisdiction_is_refused_naming_those_that_ship(key: str) -> None:
    with pytest.raises(jurisdiction.UnknownJurisdiction, match="ships: none, quebec"):
        jurisdiction.load(key)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["dues"].update(amount=0.9), "dues.amount"),
        (lambda d: d["dues"].update(amount="-0.90"), "dues.amount"),
        (lambda d: d["dues"].update(amount="0.905"), "dues.amount"),
        (lambda d: d.update(surge=True), "surge"),
        (lambda d: d["taxes"][1].update(code="gst"), "listed twice"),
        (lambda d: d["taxes"][0].update(percent="101"), "taxes.0.percent"),
        (lambda d: d["qualifications"][3].update(valid_days=30), "dated certificate"),
        (lambda d: d["qualifications"][0].update(key="tarot_reading"), "qualifications.0.key"),
        (lambda d: d["qualifications"][0].update(when={"odometer_km_at_least": 1}), "car's items"),
        (lambda d: d["qualifications"][5].update(when={}), "at least one condition"),
        (lambda d: d.update(expiry_warnings_days=[7, 30]), "earliest"),
        (lambda d: d.update(time_zone="America/Nowhere"), "unknown time zone"),
        (lambda d: d["fare_cap"].update(max_multiplier="0"), "fare_cap.max_multiplier"),
        (lambda d: d["reports"][0]["columns"].append({"key": "mode", "header": "x"}), "twice"),
        (lambda d: d["consent"].pop("clause"), "consent.clause"),
    ],
)
def test_a_bad_profile_is_refused_naming_what_is_wrong(change: Any, field: str) -> None:
    document = _quebec()
    change(document)
    with pytest.raises(ValidationError) as refused:
        jurisdiction.Profile.model_validate(document)
    shown = str(refused.value)
    assert field in shown or field.replace(".", " -> ") in shown, shown


def test_a_profile_file_must_be_named_after_its_key(tmp_path: Path) -> None:
    misnamed = tmp_path / "ontario.yaml"
    misnamed.write_text(yaml.safe_dump(_quebec(), allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="the names must agree"):
        jurisdiction.load_file(misnamed)
    same = tmp_path / "quebec.yaml"
    same.write_text(misnamed.read_text(encoding="utf-8"), encoding="utf-8")
    assert jurisdiction.load_file(same) == jurisdiction.load("quebec")


def test_the_settings_choose_a_shipped_profile() -> None:
    assert Settings().jurisdiction == "quebec"
    assert Settings(jurisdiction="none").jurisdiction == "none"
    with pytest.raises(ValidationError, match="COOP_JURISDICTION: no jurisdiction profile"):
        Settings(jurisdiction="atlantis")


def test_tax_registrations_are_read_checked_and_required_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COOP_TAX_REGISTRATIONS", " gst=123456789RT0001 , qst=1234567890TQ0001 ")
    assert Settings().tax_registrations == REGISTERED
    monkeypatch.setenv("COOP_TAX_REGISTRATIONS", "hst=1")
    with pytest.raises(ValidationError, match="hst: not a tax of the 'quebec' profile"):
        Settings()
    monkeypatch.setenv("COOP_TAX_REGISTRATIONS", "gst")
    with pytest.raises(ValidationError, match="code=number"):
        Settings()
    monkeypatch.delenv("COOP_TAX_REGISTRATIONS")
    strong = "Kk5zsZF_n6AJNW4MS3lG93S5XxHNa4Z8j9Tgq9wGfLI"
    with pytest.raises(ValidationError, match="no registration number for gst, qst"):
        Settings(env="production", admin_token=strong)
    assert Settings(env="production", admin_token=strong, tax_registrations=REGISTERED)
    # A jurisdiction without taxes needs no number, in production either.
    assert Settings(env="production", admin_token=strong, jurisdiction="none")
    assert Settings(env="dev").tax_registrations == {}  # development needs none


def _script() -> ModuleType:
    path = ROOT / ".ci" / "jurisdiction_schema.py"
    spec = importlib.util.spec_from_file_location("jurisdiction_schema", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_docs_tables_are_generated_from_the_profiles() -> None:
    script = _script()
    doc = (ROOT / "docs" / "jurisdiction.md").read_text(encoding="utf-8")
    assert script.updated(doc) == doc, "run `make jurisdiction-schema`"
    # and the check can fail: a figure changed in the doc by hand is caught
    assert script.updated(doc.replace("| 0.90 CAD a trip |", "| 0.80 CAD a trip |")) != doc.replace(
        "| 0.90 CAD a trip |", "| 0.80 CAD a trip |"
    )
    assert "| 9.975 % |" in doc and "`0.90`" in doc


# --- what the law adds to a fare -----------------------------------------------------------------


def test_quebec_adds_the_dues_then_each_tax_on_fare_and_dues_without_compounding() -> None:
    quebec = jurisdiction.load("quebec")
    billed = levies.charges(quebec, Decimal("12.34"), REGISTERED)
    # base 12.34 + 0.90 = 13.24; GST 5 % = 0.662 -> 0.66; QST 9.975 % = 1.32069 -> 1.32
    assert [(levy.code, levy.amount) for levy in billed.levies] == [
        ("dues", Decimal("0.90")),
        ("gst", Decimal("0.66")),
        ("qst", Decimal("1.32")),
    ]
    assert billed.dues == Decimal("0.90")
    assert billed.total == Decimal("15.22")
    assert [levy.registration for levy in billed.taxes] == ["123456789RT0001", "1234567890TQ0001"]
    assert billed.taxes[1].name.in_language("fr") == "TVQ"


def test_taxes_round_half_up_to_the_cent() -> None:
    quebec = jurisdiction.load("quebec")
    # base 9.10 + 0.90 = 10.00: GST 0.50 exactly; QST 0.9975 -> 1.00
    assert [levy.amount for levy in levies.charges(quebec, Decimal("9.10")).taxes] == [
        Decimal("0.50"),
        Decimal("1.00"),
    ]
    # base 0.10 + 0.90 = 1.00: GST 0.05; QST 0.09975 -> 0.10
    assert levies.charges(quebec, Decimal("0.10")).total == Decimal("1.15")


def test_a_jurisdiction_without_dues_or_taxes_bills_the_fare() -> None:
    billed = levies.charges(jurisdiction.load("none"), Decimal("7.50"))
    assert billed.levies == () and billed.total == Decimal("7.50")


@pytest.mark.parametrize("fare", [Decimal("-0.01"), Decimal("1.005")])
def test_a_fare_is_whole_cents_and_never_negative(fare: Decimal) -> None:
    with pytest.raises(ValueError, match="whole cents"):
        levies.charges(jurisdiction.load("quebec"), fare)
