"""Load-and-validate dependencies of the reputation routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from reputation.policy import PolicySourceDep, get_policy_source
from reputation.pseudonym import derive_key


def get_pseudonym_key(request: Request) -> bytes:
    # Derived from the server's admin secret: rotating that secret renames every rater.
    secret: str = request.app.state.settings.admin_token
    return derive_key(secret)


PseudonymKey = Annotated[bytes, Depends(get_pseudonym_key)]

__all__ = ["PolicySourceDep", "PseudonymKey", "get_policy_source", "get_pseudonym_key"]
