"""Load-and-validate dependencies of the reputation routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from coop.state import state_of
from reputation.policy import PolicySource
from reputation.state import ReputationState


def get_policy_source(request: Request) -> PolicySource:
    source: PolicySource | None = getattr(
        state_of(request.app, ReputationState), "reputation_policy_source", None
    )
    if source is None:  # a wiring mistake, never a client's
        raise RuntimeError("app.state.reputation_policy_source is not installed")
    return source


PolicySourceDep = Annotated[PolicySource, Depends(get_policy_source)]


def get_pseudonym_key(request: Request) -> bytes:
    # The pseudonym secret's own key, installed by the composition root (never the admin token):
    # changing COOP_PSEUDONYM_KEY renames every rater.
    key: bytes | None = getattr(state_of(request.app, ReputationState), "pseudonym_key", None)
    if key is None:  # a wiring mistake, never a client's
        raise RuntimeError("app.state.pseudonym_key is not installed")
    return key


PseudonymKey = Annotated[bytes, Depends(get_pseudonym_key)]

__all__ = ["PolicySourceDep", "PseudonymKey", "get_policy_source", "get_pseudonym_key"]
