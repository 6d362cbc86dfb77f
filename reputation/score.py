"""The score: which ratings count, and the Bayesian average of those that do. No I/O.

A rating does not count when, in this order of precedence:
1. `appeal_upheld`: a reviewer removed it on appeal;
2. `excluded_tags`: it is below five stars and every one of its tags is among the agreement's
   `excluded_tags` (the rider marked the trip down only for causes outside the driver's control);
3. `beyond_window`: it is not among the `window` most recent ratings left after 1 and 2.
The most recent is the one whose trip ended last. The score is
`(prior_weight * prior_mean + sum of counted stars) / (prior_weight + counted)`, rounded half-up
to two places, and there is none below `min_ratings` counted ratings.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from reputation.policy import STARS_MAX, ReputationPolicy

TWO_PLACES = Decimal("0.01")
METHOD = "bayesian_average"
FORMULA = "(prior_weight × prior_mean + sum of counted stars) / (prior_weight + counted ratings)"


class ExcludedReason(enum.StrEnum):
    appeal_upheld = "appeal_upheld"
    excluded_tags = "excluded_tags"
    beyond_window = "beyond_window"


@dataclass(frozen=True)
class RatingFact:
    """What the score needs to know of one rating."""

    id: uuid.UUID
    stars: int
    tags: frozenset[str]
    trip_completed_at: datetime
    created_at: datetime
    removed_on_appeal: bool = False

    @property
    def recency(self) -> tuple[datetime, datetime, uuid.UUID]:
        return (self.trip_completed_at, self.created_at, self.id)


@dataclass(frozen=True)
class Score:
    """The result, with every number the explanation quotes."""

    score: Decimal | None
    counted: int
    excluded: dict[ExcludedReason, int]
    stars_sum: int
    mean: Decimal | None  # plain mean of the counted stars, two places
    reasons: dict[uuid.UUID, ExcludedReason | None]  # None: counted
    policy: ReputationPolicy

    @property
    def ratings_excluded(self) -> int:
        return sum(self.excluded.values())

    @property
    def below_support_threshold(self) -> bool:
        return self.score is not None and self.score < self.policy.support_threshold


def only_excluded_tags(stars: int, tags: Iterable[str], excluded_tags: frozenset[str]) -> bool:
    """A rating below five stars whose every tag is one the agreement excludes."""
    tag_set = frozenset(tags)
    return stars < STARS_MAX and bool(tag_set) and tag_set <= excluded_tags


def classify(
    ratings: Iterable[RatingFact], policy: ReputationPolicy
) -> dict[uuid.UUID, ExcludedReason | None]:
    """Each rating's excluded reason, or None when it counts."""
    reasons: dict[uuid.UUID, ExcludedReason | None] = {}
    in_window = 0
    for rating in sorted(ratings, key=lambda r: r.recency, reverse=True):
        if rating.removed_on_appeal:
            reasons[rating.id] = ExcludedReason.appeal_upheld
        elif only_excluded_tags(rating.stars, rating.tags, policy.excluded_tags):
            reasons[rating.id] = ExcludedReason.excluded_tags
        elif in_window >= policy.window:
            reasons[rating.id] = ExcludedReason.beyond_window
        else:
            in_window += 1
            reasons[rating.id] = None
    return reasons


def bayesian_average(*, stars_sum: int, counted: int, policy: ReputationPolicy) -> Decimal | None:
    """The exact formula of the agreement, rounded half-up to two places."""
    weight = policy.prior_weight + counted
    if weight == 0:
        return None
    value = (policy.prior_weight * policy.prior_mean + stars_sum) / Decimal(weight)
    return value.quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


def compute(ratings: Sequence[RatingFact], policy: ReputationPolicy) -> Score:
    """Classifies the ratings and computes the score the agreement defines."""
    reasons = classify(ratings, policy)
    counted_stars = [r.stars for r in ratings if reasons[r.id] is None]
    counted = len(counted_stars)
    stars_sum = sum(counted_stars)
    excluded = dict.fromkeys(ExcludedReason, 0)
    for reason in reasons.values():
        if reason is not None:
            excluded[reason] += 1
    mean = (
        (Decimal(stars_sum) / counted).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
        if counted
        else None
    )
    score = (
        bayesian_average(stars_sum=stars_sum, counted=counted, policy=policy)
        if counted >= policy.min_ratings
        else None
    )
    return Score(
        score=score,
        counted=counted,
        excluded=excluded,
        stars_sum=stars_sum,
        mean=mean,
        reasons=reasons,
        policy=policy,
    )


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def explain(result: Score) -> str:
    """The computation in plain words, with its numbers."""
    policy = result.policy
    excluded_tags = ", ".join(sorted(policy.excluded_tags)) or "none"
    parts = []
    if result.score is None:
        parts.append(
            f"No score is shown yet: {_plural(result.counted, 'rating')} "
            f"{'counts' if result.counted == 1 else 'count'}, and agreement version "
            f"{policy.agreement_version} shows a score from {policy.min_ratings} counted ratings."
        )
    else:
        parts.append(
            f"Your score is {result.score}, computed as agreement version "
            f"{policy.agreement_version} sets out: ({policy.prior_weight} × {policy.prior_mean} + "
            f"{result.stars_sum}) / ({policy.prior_weight} + {result.counted}) = {result.score}. "
            f"That is {policy.prior_weight} imagined ratings of {policy.prior_mean} (the prior, "
            f"so a few ratings cannot swing the score) plus the "
            f"{_plural(result.counted, 'rating')} that count, whose stars add up to "
            f"{result.stars_sum} (a plain average of {result.mean})."
        )
    parts.append(
        f"Ratings that count are your most recent {policy.window}, by when the trip ended, "
        "leaving aside the ones that do not count."
    )
    parts.append(
        "Not counted: "
        f"{_plural(result.excluded[ExcludedReason.appeal_upheld], 'rating')} removed on appeal; "
        f"{_plural(result.excluded[ExcludedReason.excluded_tags], 'rating')} below five stars "
        f"whose every tag names a cause outside your control ({excluded_tags}); "
        f"{_plural(result.excluded[ExcludedReason.beyond_window], 'older rating')} beyond the "
        f"most recent {policy.window}."
    )
    if result.score is not None and result.below_support_threshold:
        parts.append(
            f"Your score is below {policy.support_threshold}: a person from the co-op will reach "
            "out to offer support. A score never changes your status as a member or driver."
        )
    else:
        parts.append("A score never changes your status as a member or driver.")
    return " ".join(parts)
