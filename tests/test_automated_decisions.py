"""The register of automated decisions: every decision listed with its parameters in force, a
person's part and how to ask for review; a status decision listed as never automated."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from httpx import AsyncClient

from bargaining.terms import Terms, load_founding_terms
from coop import jurisdiction
from coop.settings import Settings
from server import decisions


def _optional_term(path: str) -> bool:
    """Whether `path` names a term of the agreement that may be absent (then: off)."""
    model: Any = Terms
    *parents, name = path.split(".")
    for step in parents:
        model = model.model_fields[step].annotation
    field = model.model_fields[name]
    return not field.is_required() and field.default is None


def test_every_parameter_names_something_in_force() -> None:
    terms, profile = load_founding_terms(), jurisdiction.load("quebec")
    for decision in decisions.REGISTER:
        assert decision.review and decision.data_used, decision.key
        for parameter in decision.parameters:
            value = decisions.resolve(parameter, terms=terms, settings=Settings(), profile=profile)
            assert value is not None or _optional_term(parameter.path), (decision.key, parameter)
    keys = [decision.key for decision in decisions.REGISTER]
    assert len(keys) == len(set(keys))


def test_the_values_are_those_of_the_terms_given() -> None:
    terms = load_founding_terms()
    changed = terms.model_copy(
        update={"dispatch": terms.dispatch.model_copy(update={"fairness_weight": Decimal("0.5")})}
    )
    register = decisions.register_in_force(
        terms=changed,
        agreement_version=7,
        settings=Settings(),
        profile=jurisdiction.load("quebec"),
    )
    offer = next(d for d in register.decisions if d.key == "dispatch_offer")
    weight = next(p for p in offer.parameters if p.name == "dispatch.fairness_weight")
    assert (register.agreement_version, weight.value) == (7, "0.5")


async def test_anyone_reads_the_register_with_the_values_in_force(client: AsyncClient) -> None:
    response = await client.get("/v1/transparency/automated-decisions")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["agreement_version"], body["jurisdiction"]) == (1, "quebec")
    by_key = {decision["key"]: decision for decision in body["decisions"]}
    assert set(by_key) >= {
        "dispatch_offer",
        "batch_timing",
        "fare",
        "rating_counts",
        "rate_limits",
        "implausible_positions",
        "qualification_expiry",
        "status_decisions",
    }
    status = by_key["status_decisions"]
    assert "never automated" in status["decides"]
    assert (status["person"], status["parameters"]) == ("decides", [])
    terms = load_founding_terms()
    timing = {p["name"]: p["value"] for p in by_key["batch_timing"]["parameters"]}
    assert timing["dispatch.batch_interval_ms"] == terms.dispatch.batch_interval_ms
    fare = {p["name"]: p["value"] for p in by_key["fare"]["parameters"]}
    assert fare["dues"]["amount"] == "0.90"
    assert by_key["rating_counts"]["person"] == "reviews"
