"""The reputation terms of the collective agreement, as reputation reads them.

Reputation never imports bargaining: the composition root installs a policy source on
`app.state.reputation_policy_source` that answers the terms in force at a given moment.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

STARS_MIN = 1
STARS_MAX = 5


@dataclass(frozen=True)
class ReputationPolicy:
    """The `reputation:` section of one agreement version (field names as in docs/agreement.md)."""

    agreement_version: int
    window: int
    min_ratings: int
    prior_mean: Decimal
    prior_weight: int
    rating_window_days: int
    appeal_window_days: int
    review_due_days: int
    support_threshold: Decimal
    excluded_tags: frozenset[str]
    # A rating shows to its driver once this many newer ratings of them exist (0: at once).
    reveal_after_ratings: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.window < 1:
            problems.append("window must be at least 1")
        if self.min_ratings < 0:
            problems.append("min_ratings must not be negative")
        if self.prior_weight < 0:
            problems.append("prior_weight must not be negative")
        for name in ("prior_mean", "support_threshold"):
            value = getattr(self, name)
            if not STARS_MIN <= value <= STARS_MAX:
                problems.append(f"{name} must be within {STARS_MIN}..{STARS_MAX}")
        if self.reveal_after_ratings < 0:
            problems.append("reveal_after_ratings must not be negative")
        for name in ("rating_window_days", "appeal_window_days", "review_due_days"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must not be negative")
        if problems:
            raise ValueError("invalid reputation terms: " + "; ".join(problems))

    @classmethod
    def from_terms(cls, *, agreement_version: int, terms: Mapping[str, Any]) -> ReputationPolicy:
        """Builds the policy from the agreement's `reputation` mapping (strings or numbers)."""
        tags: Iterable[str] = terms["excluded_tags"]
        return cls(
            agreement_version=int(agreement_version),
            window=int(terms["window"]),
            min_ratings=int(terms["min_ratings"]),
            prior_mean=Decimal(str(terms["prior_mean"])),
            prior_weight=int(terms["prior_weight"]),
            rating_window_days=int(terms["rating_window_days"]),
            appeal_window_days=int(terms["appeal_window_days"]),
            review_due_days=int(terms["review_due_days"]),
            support_threshold=Decimal(str(terms["support_threshold"])),
            excluded_tags=frozenset(str(tag) for tag in tags),
            reveal_after_ratings=int(terms.get("reveal_after_ratings", 0)),
        )


PolicySource = Callable[[AsyncSession, datetime], Awaitable[ReputationPolicy]]
