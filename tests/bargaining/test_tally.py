"""Counting a vote: docs/agreement.md's quorum and approval rules at their edges."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bargaining.tally import Outcome, Reason, count
from bargaining.terms import Governance

RULES = Governance(quorum_percent=Decimal("30"), approval_percent=Decimal("50"), max_voting_days=30)


def test_quorum_is_met_exactly_at_its_percentage() -> None:
    met = count(yes=3, no=0, abstain=0, eligible=10, rules=RULES)
    assert (met.outcome, met.reason, met.turnout_percent) == (
        Outcome.ratified,
        Reason.approved,
        Decimal("30.00"),
    )
    short = count(yes=2, no=0, abstain=0, eligible=10, rules=RULES)
    assert (short.outcome, short.reason) == (Outcome.rejected, Reason.quorum_not_met)


def test_abstentions_count_for_the_quorum_not_the_approval() -> None:
    result = count(yes=1, no=0, abstain=2, eligible=10, rules=RULES)
    assert (result.outcome, result.reason) == (Outcome.ratified, Reason.approved)
    only_abstain = count(yes=0, no=0, abstain=5, eligible=10, rules=RULES)
    assert (only_abstain.outcome, only_abstain.reason) == (Outcome.rejected, Reason.not_approved)


def test_approval_must_be_above_its_percentage() -> None:
    tie = count(yes=5, no=5, abstain=0, eligible=10, rules=RULES)
    assert (tie.outcome, tie.reason) == (Outcome.rejected, Reason.not_approved)
    majority = count(yes=6, no=5, abstain=0, eligible=11, rules=RULES)
    assert majority.outcome is Outcome.ratified


def test_fractional_thresholds_are_exact() -> None:
    rules = Governance(
        quorum_percent=Decimal("33.34"), approval_percent=Decimal("66.66"), max_voting_days=30
    )
    # 1 of 3 is 33.333... %: under 33.34.
    assert count(yes=1, no=0, abstain=0, eligible=3, rules=rules).reason is Reason.quorum_not_met
    # 2 of 3 yes is 66.666... %: above 66.66.
    assert count(yes=2, no=1, abstain=0, eligible=3, rules=rules).outcome is Outcome.ratified
    assert count(yes=1, no=0, abstain=0, eligible=3, rules=rules).turnout_percent == Decimal(
        "33.33"
    )


def test_nobody_eligible_ratifies_nothing() -> None:
    zero_quorum = Governance(
        quorum_percent=Decimal("0"), approval_percent=Decimal("0"), max_voting_days=30
    )
    result = count(yes=0, no=0, abstain=0, eligible=0, rules=zero_quorum)
    assert (result.outcome, result.turnout_percent) == (Outcome.rejected, Decimal("0.00"))


def test_impossible_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="only 2 members eligible"):
        count(yes=2, no=1, abstain=0, eligible=2, rules=RULES)
    with pytest.raises(ValueError, match="negative"):
        count(yes=-1, no=0, abstain=0, eligible=2, rules=RULES)


@given(
    yes=st.integers(0, 500),
    no=st.integers(0, 500),
    abstain=st.integers(0, 500),
    spare=st.integers(0, 500),
    quorum=st.decimals(0, 100, places=2),
    approval=st.decimals(0, Decimal("99.99"), places=2),
)
def test_the_outcome_is_the_rule_of_agreement_md(
    yes: int, no: int, abstain: int, spare: int, quorum: Decimal, approval: Decimal
) -> None:
    eligible = yes + no + abstain + spare
    rules = Governance(quorum_percent=quorum, approval_percent=approval, max_voting_days=30)
    result = count(yes=yes, no=no, abstain=abstain, eligible=eligible, rules=rules)
    from fractions import Fraction

    turnout = Fraction(yes + no + abstain, eligible) if eligible else Fraction(0)
    ratified = (
        eligible > 0
        and turnout * 100 >= Fraction(quorum)
        and yes + no > 0
        and Fraction(yes * 100, yes + no) > Fraction(approval)
    )
    assert (result.outcome is Outcome.ratified) == ratified
