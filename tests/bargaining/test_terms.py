"""The terms schema: strict, every bad field named, and a canonical form that names a version."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from bargaining.terms import (
    Terms,
    canonical_json,
    load_founding_terms,
    stored_terms,
    terms_sha256,
    terms_to_wire,
)
from tests.bargaining.strategies import founding_wire


def errors_of(data: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as raised:
        Terms.model_validate(data)
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in raised.value.errors()}


def test_the_founding_agreement_loads_as_agreement_md_gives_it() -> None:
    terms = load_founding_terms()
    assert terms.currency == "CAD"
    assert set(terms.fares) == {"standard", "accessible"}
    standard = terms.fares["standard"]
    assert (standard.base, standard.per_km, standard.per_minute, standard.minimum) == (
        Decimal("3.50"),
        Decimal("1.05"),
        Decimal("0.35"),
        Decimal("7.00"),
    )
    assert terms.commission.percent == Decimal("8")
    assert terms.commission.cap == Decimal("2.50")
    assert terms.cancellation.free_period_s == 120
    assert terms.dispatch.max_pickup_distance_m == 6000
    assert terms.dispatch.fairness_weight == Decimal("0.2")
    assert terms.reputation.excluded_tags == ["traffic", "pricing", "app_problem"]
    assert terms.governance.quorum_percent == Decimal("30")


def test_canonical_json_is_sorted_compact_with_decimal_strings() -> None:
    text = canonical_json(load_founding_terms())
    assert " " not in text
    document = json.loads(text)
    assert list(document) == sorted(document)
    assert document["fares"]["standard"]["per_km"] == "1.05"
    assert document["commission"] == {"cap": "2.50", "percent": "8"}
    assert document["dispatch"]["offer_timeout_s"] == 15
    assert terms_sha256(load_founding_terms()) == hashlib.sha256(text.encode()).hexdigest()


def test_equal_terms_have_one_canonical_form_whatever_their_spelling() -> None:
    wire = founding_wire()
    wire["fares"]["standard"]["base"] = "3.5"
    wire["commission"]["percent"] = "8.00"
    wire["dispatch"]["fairness_weight"] = "0.20"
    respelled = Terms.model_validate(wire)
    assert canonical_json(respelled) == canonical_json(load_founding_terms())
    assert terms_sha256(respelled) == terms_sha256(load_founding_terms())


def test_any_change_changes_the_hash() -> None:
    wire = founding_wire()
    wire["fares"]["standard"]["per_km"] = "1.06"
    assert terms_sha256(Terms.model_validate(wire)) != terms_sha256(load_founding_terms())


def test_the_commission_cap_is_optional() -> None:
    wire = founding_wire()
    del wire["commission"]["cap"]
    assert Terms.model_validate(wire).commission.cap is None


def test_unknown_fields_are_rejected_wherever_they_are() -> None:
    wire = founding_wire()
    wire["comission"] = {"percent": "8"}
    wire["fares"]["standard"]["per_mile"] = "1.00"
    errors = errors_of(wire)
    assert set(errors) == {"comission", "fares.standard.per_mile"}
    assert all("Extra inputs" in reason for reason in errors.values())


def test_every_bad_field_is_named_with_its_reason() -> None:
    wire = founding_wire()
    wire["fares"]["standard"]["base"] = "-1.00"
    wire["commission"]["percent"] = "101"
    wire["cancellation"]["free_period_s"] = "soon"
    del wire["governance"]["quorum_percent"]
    wire["currency"] = "cad"
    errors = errors_of(wire)
    assert set(errors) == {
        "fares.standard.base",
        "commission.percent",
        "cancellation.free_period_s",
        "governance.quorum_percent",
        "currency",
    }
    assert "greater than or equal to 0" in errors["fares.standard.base"]
    assert "less than or equal to 100" in errors["commission.percent"]
    assert errors["governance.quorum_percent"] == "Field required"


def test_amounts_with_a_fraction_must_be_strings_not_floats() -> None:
    wire = founding_wire()
    wire["fares"]["standard"]["per_km"] = 1.05
    errors = errors_of(wire)
    assert list(errors) == ["fares.standard.per_km"]
    assert "decimal string" in errors["fares.standard.per_km"]


def test_amounts_charged_as_they_are_must_be_whole_cents() -> None:
    wire = founding_wire()
    wire["cancellation"]["fee"] = "5.005"
    wire["fares"]["standard"]["per_km"] = "1.0525"  # a rate may be finer than a cent
    assert list(errors_of(wire)) == ["cancellation.fee"]


def test_every_fare_class_must_cover_the_drivers_floor() -> None:
    wire = founding_wire()
    wire["fares"]["standard"]["per_km"] = "0.80"
    wire["fares"]["accessible"]["per_minute"] = "0.29"
    errors = errors_of(wire)
    assert set(errors) == {"fares.standard.per_km", "fares.accessible.per_minute"}
    assert "driver_floor.per_km (0.85)" in errors["fares.standard.per_km"]
    assert "driver_floor.per_minute (0.30)" in errors["fares.accessible.per_minute"]


def test_the_standard_class_is_required() -> None:
    wire = founding_wire()
    wire["fares"] = {"accessible": wire["fares"]["accessible"]}
    assert "'standard' service class is required" in errors_of(wire)["fares.standard"]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("reputation.prior_mean", "5.5", "reputation.prior_mean"),
        ("reputation.support_threshold", "0.9", "reputation.support_threshold"),
        ("reputation.min_ratings", 101, "reputation.min_ratings"),
        ("reputation.excluded_tags", ["traffic", "traffic"], "reputation.excluded_tags"),
        ("governance.approval_percent", "100", "governance.approval_percent"),
        ("dispatch.batch_interval_ms", 0, "dispatch.batch_interval_ms"),
        ("dispatch.max_wait_s", 10, "dispatch.max_wait_s"),
        ("dispatch.offer_timeout_s", True, "dispatch.offer_timeout_s"),
    ],
)
def test_ranges_and_rules(path: str, value: Any, field: str) -> None:
    wire = founding_wire()
    section, key = path.split(".")
    wire[section][key] = value
    assert list(errors_of(wire)) == [field]


def test_terms_are_frozen() -> None:
    terms = load_founding_terms()
    with pytest.raises(ValidationError):
        terms.currency = "USD"  # type: ignore[misc]


def test_the_trust_terms_are_in_the_founding_agreement() -> None:
    terms = load_founding_terms()
    assert terms.dispatch.max_plausible_speed_kmh == 130
    assert terms.dispatch.arrival_radius_m == 250
    assert terms.reputation.reveal_after_ratings == 0
    assert {fare.max_over_quote_percent for fare in terms.fares.values()} == {Decimal("50")}


def test_the_trust_terms_are_checked_and_named() -> None:
    wire = founding_wire()
    wire["dispatch"]["max_plausible_speed_kmh"] = 5
    wire["dispatch"]["arrival_radius_m"] = "250"
    wire["reputation"]["reveal_after_ratings"] = -1
    wire["fares"]["standard"]["max_over_quote_percent"] = 50.5
    wire["fares"]["accessible"]["max_over_quote_percent"] = "1000.01"
    errors = errors_of(wire)
    assert set(errors) == {
        "dispatch.max_plausible_speed_kmh",
        "dispatch.arrival_radius_m",
        "reputation.reveal_after_ratings",
        "fares.standard.max_over_quote_percent",
        "fares.accessible.max_over_quote_percent",
    }


def test_a_proposal_must_state_the_trust_terms_but_old_versions_read_their_founding_values() -> (
    None
):
    wire = founding_wire()
    del wire["dispatch"]["max_plausible_speed_kmh"]
    del wire["dispatch"]["arrival_radius_m"]
    del wire["reputation"]["reveal_after_ratings"]
    for fare in wire["fares"].values():
        del fare["max_over_quote_percent"]
    # New terms must name every term: a missing one is an error naming it.
    assert "dispatch.max_plausible_speed_kmh" in errors_of(wire)
    assert "fares.standard.max_over_quote_percent" in errors_of(wire)
    # A version stored before these terms existed is read with their founding values, and the
    # stored document itself is left as it was (its sha256 is the digest of what was written).
    before = json.dumps(wire, sort_keys=True)
    assert stored_terms(wire) == load_founding_terms()
    assert json.dumps(wire, sort_keys=True) == before


def test_the_floor_protection_terms_are_founding_checked_and_filled_in_for_old_versions() -> None:
    terms = load_founding_terms().dispatch
    assert (terms.no_show_wait_s, terms.overrun_percent, terms.overrun_s) == (300, 100, 300)
    wire = founding_wire()
    wire["dispatch"]["no_show_wait_s"] = 30
    wire["dispatch"]["overrun_percent"] = "100"
    wire["dispatch"]["overrun_s"] = -1
    assert set(errors_of(wire)) == {
        "dispatch.no_show_wait_s",
        "dispatch.overrun_percent",
        "dispatch.overrun_s",
    }
    wire = founding_wire()
    for term in ("no_show_wait_s", "overrun_percent", "overrun_s"):
        del wire["dispatch"][term]
    assert "dispatch.no_show_wait_s" in errors_of(wire)
    assert stored_terms(wire) == load_founding_terms()


def test_early_batches_are_optional_and_keep_older_versions_hashes() -> None:
    wire = founding_wire()
    wire["dispatch"].pop("min_batch_interval_ms")
    older = Terms.model_validate(wire)
    assert older.dispatch.min_batch_interval_ms is None
    assert json.loads(canonical_json(older)) == json.loads(json.dumps(wire))
    wire["dispatch"]["min_batch_interval_ms"] = 2001
    with pytest.raises(ValidationError, match="dispatch.batch_interval_ms"):
        Terms.model_validate(wire)


def test_the_fairness_credit_bound_is_optional_and_keeps_older_versions_hashes() -> None:
    wire = founding_wire()
    wire["dispatch"].pop("fairness_credit_max_s", None)
    older = Terms.model_validate(wire)
    assert older.dispatch.fairness_credit_max_s is None
    # Absent from the canonical form when unset: a version stored before the term existed keeps
    # the bytes (and the hash) it was stored with.
    assert "fairness_credit_max_s" not in json.loads(canonical_json(older))["dispatch"]
    wire["dispatch"]["fairness_credit_max_s"] = 60
    bounded = Terms.model_validate(wire)
    assert json.loads(canonical_json(bounded))["dispatch"]["fairness_credit_max_s"] == 60
    assert terms_sha256(bounded) != terms_sha256(older)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-1, "greater than or equal to 0"),
        (3601, "less than or equal to 3600"),
        ("60", "valid integer"),
        (60.5, "valid integer"),
    ],
)
def test_a_bad_fairness_credit_bound_is_named(value: object, reason: str) -> None:
    wire = founding_wire()
    wire["dispatch"]["fairness_credit_max_s"] = value
    errors = errors_of(wire)
    assert list(errors) == ["dispatch.fairness_credit_max_s"]
    assert reason in errors["dispatch.fairness_credit_max_s"]


@pytest.mark.parametrize("term", ["earnings_credit_max_s", "rider_wait_credit_max_s"])
def test_the_fairness_credits_are_optional_and_keep_older_versions_hashes(term: str) -> None:
    wire = founding_wire()
    wire["dispatch"].pop(term, None)
    older = Terms.model_validate(wire)
    assert getattr(older.dispatch, term) is None
    # Left out of the canonical form and the wire when unset: a version stored before the term
    # existed keeps its bytes and its hash.
    assert term not in json.loads(canonical_json(older))["dispatch"]
    assert term not in terms_to_wire(older)["dispatch"]
    wire["dispatch"][term] = 120
    set_ = Terms.model_validate(wire)
    assert json.loads(canonical_json(set_))["dispatch"][term] == 120
    assert terms_sha256(set_) != terms_sha256(older)


def test_a_version_stored_before_the_new_terms_reads_as_written() -> None:
    """Stored terms without the younger optional dispatch terms (every version ratified before
    them) validate, and hash to the digest of exactly what was stored."""
    wire = founding_wire()
    for younger in ("earnings_credit_max_s", "rider_wait_credit_max_s", "fairness_credit_max_s"):
        wire["dispatch"].pop(younger, None)
    stored = json.loads(json.dumps(wire))
    read = stored_terms(stored)
    stored_bytes = json.dumps(stored, sort_keys=True, separators=(",", ":"))
    assert canonical_json(read) == stored_bytes
    assert terms_sha256(read) == hashlib.sha256(stored_bytes.encode()).hexdigest()


@pytest.mark.parametrize("term", ["earnings_credit_max_s", "rider_wait_credit_max_s"])
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-1, "greater than or equal to 0"),
        ("above", "less than or equal to "),
        ("60", "valid integer"),
        (60.5, "valid integer"),
        (True, "valid integer"),
    ],
)
def test_a_bad_fairness_credit_is_named(term: str, value: object, reason: str) -> None:
    wire = founding_wire()
    # The earnings credit goes higher: the unbounded policies docs/fairness.md measures use it.
    most = {"earnings_credit_max_s": 20_000, "rider_wait_credit_max_s": 3_600}[term]
    wire["dispatch"][term] = most + 1 if value == "above" else value
    reason = reason + str(most) if value == "above" else reason
    errors = errors_of(wire)
    assert list(errors) == [f"dispatch.{term}"]
    assert reason in errors[f"dispatch.{term}"]
