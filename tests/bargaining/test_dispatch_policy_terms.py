"""The dispatch policies docs/fairness.md measured, as terms: the earnings credit's fare scaling
and its penalty above the median rate, the candidates per request, and the bound (including no
bound). Founding values unchanged; each new term validated and named when wrong."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from httpx import AsyncClient
from pydantic import ValidationError

from bargaining.terms import (
    Terms,
    canonical_json,
    load_founding_terms,
    stored_terms,
    terms_sha256,
    terms_to_wire,
)
from tests.bargaining.conftest import Clock, open_proposal, proposal_body
from tests.bargaining.strategies import founding_wire
from tests.builders import Account

NEW_TERMS = (
    "earnings_credit_fare_scale_max",
    "earnings_penalty_above_median",
    "candidates_per_request",
)

# What the members would vote to reach a 30 % lower Gini (docs/fairness.md): the value-aware,
# signed credit of 5500 s, idle 0.4, every free driver in reach, no bound.
UNBOUNDED_FARE_AWARE = {
    "dispatch.fairness_weight": "0.4",
    "dispatch.earnings_credit_max_s": 5500,
    "dispatch.earnings_credit_fare_scale_max": "2",
    "dispatch.earnings_penalty_above_median": True,
    "dispatch.candidates_per_request": 0,
    "dispatch.fairness_credit_max_s": None,
}


def errors_of(data: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as raised:
        Terms.model_validate(data)
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in raised.value.errors()}


def test_the_founding_agreement_keeps_its_policy_and_its_hash() -> None:
    founding = load_founding_terms()
    dispatch = founding.dispatch
    assert (dispatch.fairness_weight, dispatch.earnings_credit_max_s) == (Decimal("0.2"), 1800)
    assert dispatch.fairness_credit_max_s == 400
    for term in NEW_TERMS:
        assert getattr(dispatch, term) is None
        assert term not in terms_to_wire(founding)["dispatch"]
    # A version stored before the terms existed reads back to the same bytes and digest.
    stored = json.loads(canonical_json(founding))
    assert terms_sha256(stored_terms(stored)) == terms_sha256(founding)


def test_the_unbounded_fare_aware_policy_is_a_valid_set_of_terms() -> None:
    wire = founding_wire()
    for path, value in UNBOUNDED_FARE_AWARE.items():
        wire["dispatch"][path.split(".")[1]] = value
    terms = Terms.model_validate(wire)
    dispatch = terms.dispatch
    assert dispatch.fairness_credit_max_s is None  # no bound
    assert dispatch.earnings_credit_fare_scale_max == Decimal("2")
    assert dispatch.earnings_penalty_above_median is True
    assert dispatch.candidates_per_request == 0
    out = terms_to_wire(terms)["dispatch"]
    assert out["earnings_credit_fare_scale_max"] == "2"
    assert out["earnings_penalty_above_median"] is True
    assert out["candidates_per_request"] == 0
    assert "fairness_credit_max_s" not in out  # "no bound" is the bound left out
    assert Terms.model_validate(json.loads(canonical_json(terms))) == terms


@pytest.mark.parametrize(
    ("term", "value", "reason"),
    [
        ("earnings_credit_fare_scale_max", "0.5", "greater than or equal to 1"),
        ("earnings_credit_fare_scale_max", "11", "less than or equal to 10"),
        ("earnings_credit_fare_scale_max", 2.5, "decimal string"),
        ("earnings_credit_fare_scale_max", "1.005", "decimal places"),
        ("earnings_penalty_above_median", "yes", "valid boolean"),
        ("earnings_penalty_above_median", 1, "valid boolean"),
        ("candidates_per_request", -1, "greater than or equal to 0"),
        ("candidates_per_request", 101, "less than or equal to 100"),
        ("candidates_per_request", "8", "valid integer"),
        ("earnings_credit_max_s", 20_001, "less than or equal to 20000"),
    ],
)
def test_a_bad_policy_term_is_named(term: str, value: object, reason: str) -> None:
    wire = founding_wire()
    wire["dispatch"][term] = value
    errors = errors_of(wire)
    assert list(errors) == [f"dispatch.{term}"]
    assert reason in errors[f"dispatch.{term}"]


@pytest.mark.parametrize(
    ("term", "value"),
    [("earnings_credit_fare_scale_max", "2"), ("earnings_penalty_above_median", True)],
)
@pytest.mark.parametrize("earnings", [None, 0])
def test_scaling_or_mirroring_no_earnings_credit_is_refused(
    term: str, value: object, earnings: int | None
) -> None:
    wire = founding_wire()
    wire["dispatch"]["earnings_credit_max_s"] = earnings
    wire["dispatch"][term] = value
    errors = errors_of(wire)
    assert list(errors) == [f"dispatch.{term}"]
    assert "dispatch.earnings_credit_max_s above 0" in errors[f"dispatch.{term}"]
    # No penalty (false) is no claim about the credit: accepted.
    wire["dispatch"][term] = False if term == "earnings_penalty_above_median" else None
    assert Terms.model_validate(wire).dispatch.earnings_credit_max_s == earnings


async def test_a_proposal_moves_to_the_unbounded_policy_and_a_bad_one_is_named(
    client: AsyncClient, committee: Account, clock: Clock
) -> None:
    proposal = await open_proposal(
        client, committee, proposal_body(clock, changes=UNBOUNDED_FARE_AWARE)
    )
    dispatch = proposal["terms"]["dispatch"]
    assert dispatch["candidates_per_request"] == 0
    assert dispatch["earnings_penalty_above_median"] is True
    assert "fairness_credit_max_s" not in dispatch
    shown = await client.get(f"/v1/proposals/{proposal['id']}")
    assert shown.status_code == 200
    assert shown.json()["terms"]["dispatch"]["earnings_credit_fare_scale_max"] == "2"

    bad = proposal_body(
        clock,
        changes={
            "dispatch.earnings_credit_max_s": 0,
            "dispatch.earnings_credit_fare_scale_max": "2",
            "dispatch.candidates_per_request": 500,
        },
    )
    response = await client.post("/v1/proposals", json=bad, headers=committee.headers)
    assert response.status_code == 422
    assert response.json()["type"] == "validation_error"
    fields = [error["field"] for error in response.json()["errors"]]
    assert fields == ["terms.dispatch.candidates_per_request"]
    bad["terms"]["dispatch"]["candidates_per_request"] = 32
    response = await client.post("/v1/proposals", json=bad, headers=committee.headers)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "terms.dispatch.earnings_credit_fare_scale_max"
