"""Counting a vote: docs/agreement.md's governance rules, in exact integer and Decimal arithmetic.

Pure: the ballots come in as counts, the rules as the `Governance` terms of the agreement that
was in force when the proposal opened.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from bargaining.terms import Governance


class Outcome(enum.StrEnum):
    ratified = "ratified"
    rejected = "rejected"


class Reason(enum.StrEnum):
    approved = "approved"
    quorum_not_met = "quorum_not_met"
    not_approved = "not_approved"


@dataclass(frozen=True)
class Tally:
    yes: int
    no: int
    abstain: int
    eligible: int
    turnout_percent: Decimal  # rounded half-up to two places, for display only
    outcome: Outcome
    reason: Reason


def count(*, yes: int, no: int, abstain: int, eligible: int, rules: Governance) -> Tally:
    """Decides a vote: quorum on every ballot cast (abstentions count), then approval of yes/no.

    Ratified when turnout*100 >= quorum_percent and yes*100/(yes+no) > approval_percent. Both
    sides are cross-multiplied so no rounding can tip a result; with no eligible member, or no
    yes-or-no ballot, nothing is ratified.
    """
    if min(yes, no, abstain, eligible) < 0:
        raise ValueError("counts cannot be negative")
    cast = yes + no + abstain
    if cast > eligible:
        raise ValueError(f"{cast} ballots cast but only {eligible} members eligible")
    turnout_percent = (
        (Decimal(cast) * 100 / Decimal(eligible)).quantize(Decimal("0.01"), ROUND_HALF_UP)
        if eligible
        else Decimal("0.00")
    )
    quorum_met = eligible > 0 and Decimal(cast) * 100 >= rules.quorum_percent * eligible
    approved = yes + no > 0 and Decimal(yes) * 100 > rules.approval_percent * (yes + no)
    if not quorum_met:
        outcome, reason = Outcome.rejected, Reason.quorum_not_met
    elif not approved:
        outcome, reason = Outcome.rejected, Reason.not_approved
    else:
        outcome, reason = Outcome.ratified, Reason.approved
    return Tally(yes, no, abstain, eligible, turnout_percent, outcome, reason)
