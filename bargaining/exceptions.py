"""Errors of the bargaining domain, each with a short stable `type` code."""

from __future__ import annotations

from coop.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    UnprocessableEntity,
)


class AgreementNotFound(NotFound):
    type = "agreement_not_found"
    title = "No such agreement version"


class NoAgreementInForce(ServiceUnavailable):
    type = "no_agreement_in_force"
    title = "No agreement is in force"


class ProposalNotFound(NotFound):
    type = "proposal_not_found"
    title = "No such proposal"


class InvalidProposal(UnprocessableEntity):
    """A proposal that cannot be put to a vote; `errors` names each field as `[{field, reason}]`."""

    type = "invalid_proposal"
    title = "The proposal cannot be put to a vote"


class VotingClosed(Conflict):
    type = "voting_closed"
    title = "Voting on this proposal has closed"


class VotingStillOpen(Conflict):
    type = "voting_open"
    title = "Voting on this proposal is still open"


class NotEligible(Forbidden):
    type = "not_eligible"
    title = "Not eligible to vote on this proposal"


class PatronagePeriodTaken(Conflict):
    type = "patronage_period_taken"
    title = "A dividend for this period was already allocated or is being voted on"
