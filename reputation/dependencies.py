"""Load-and-validate dependencies of the reputation routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dispatch.core.state import state_of
from reputation.policy import PolicySource
from reputation.pseudonym import derive_key
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
    # Derived from the server's admin secret: rotating that secret renames every rater.
    return derive_key(state_of(request.app, ReputationState).settings.admin_token)


PseudonymKey = Annotated[bytes, Depends(get_pseudonym_key)]

__all__ = ["PolicySourceDep", "PseudonymKey", "get_policy_source", "get_pseudonym_key"]
