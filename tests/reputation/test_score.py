"""The score module alone: examples from docs/agreement.md's terms, and properties (hypothesis)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reputation.policy import ReputationPolicy
from reputation.score import ExcludedReason, RatingFact, classify, compute, explain
from reputation.tags import TAG_CODES
from tests.reputation.helpers import FOUNDING

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def fact(
    stars: int,
    minutes: int,
    tags: tuple[str, ...] = (),
    removed: bool = False,
) -> RatingFact:
    at = EPOCH + timedelta(minutes=minutes)
    return RatingFact(
        id=uuid.uuid4(),
        stars=stars,
        tags=frozenset(tags),
        trip_completed_at=at,
        created_at=at + timedelta(minutes=3),
        removed_on_appeal=removed,
    )


def test_the_founding_example() -> None:
    ratings = [fact(5, i) for i in range(15)] + [fact(3, 100 + i) for i in range(5)]
    result = compute(ratings, FOUNDING)
    # (10 × 4.7 + 15×5 + 5×3) / (10 + 20) = 137 / 30 = 4.5666…
    assert result.score == Decimal("4.57")
    assert result.counted == 20
    assert result.stars_sum == 90
    assert result.mean == Decimal("4.50")
    assert result.ratings_excluded == 0
    assert not result.below_support_threshold


def test_no_score_below_the_minimum_sample() -> None:
    result = compute([fact(1, i) for i in range(19)], FOUNDING)
    assert result.score is None
    assert result.counted == 19
    assert not result.below_support_threshold
    assert "No score is shown yet: 19 ratings count" in explain(result)
    assert "from 20 counted ratings" in explain(result)


def test_rounding_is_half_up_to_the_cent() -> None:
    policy = dataclasses.replace(FOUNDING, min_ratings=1, prior_weight=1, prior_mean=Decimal("4.0"))
    # (4.0 + 4 + 4 + 5) / 4 = 4.25 exactly; (4.0 + 5) / 2 = 4.5
    assert compute([fact(4, 1), fact(4, 2), fact(5, 3)], policy).score == Decimal("4.25")
    assert compute([fact(5, 1)], policy).score == Decimal("4.50")
    # (4.0 + 6×4 + 5) / 8 = 33 / 8 = 4.125 -> 4.13 (half-up, where banker's rounding gives 4.12)
    eight = [fact(4, i) for i in range(6)] + [fact(5, 10)]
    assert compute(eight, policy).score == Decimal("4.13")


def test_exclusions_and_their_precedence() -> None:
    policy = dataclasses.replace(FOUNDING, window=2, min_ratings=0)
    removed_and_tagged = fact(1, 50, ("traffic",), removed=True)
    tagged = fact(2, 40, ("traffic", "app_problem"))
    mixed = fact(2, 30, ("traffic", "rude"))
    five_tagged = fact(5, 20, ("pricing",))
    old = fact(4, 10)
    untagged_low = fact(1, 5)
    reasons = classify([old, untagged_low, five_tagged, mixed, tagged, removed_and_tagged], policy)
    assert reasons == {
        removed_and_tagged.id: ExcludedReason.appeal_upheld,
        tagged.id: ExcludedReason.excluded_tags,
        mixed.id: None,
        five_tagged.id: None,
        old.id: ExcludedReason.beyond_window,
        untagged_low.id: ExcludedReason.beyond_window,
    }


def test_the_most_recent_is_the_last_trip_to_end() -> None:
    policy = dataclasses.replace(FOUNDING, window=1, min_ratings=0)
    earlier_trip_rated_later = RatingFact(
        id=uuid.uuid4(),
        stars=1,
        tags=frozenset(),
        trip_completed_at=EPOCH,
        created_at=EPOCH + timedelta(days=3),
    )
    later_trip = fact(5, 60)
    reasons = classify([earlier_trip_rated_later, later_trip], policy)
    assert reasons[later_trip.id] is None
    assert reasons[earlier_trip_rated_later.id] is ExcludedReason.beyond_window


def test_the_explanation_quotes_the_numbers() -> None:
    ratings = [fact(5, i) for i in range(18)] + [fact(2, 100 + i) for i in range(2)]
    ratings += [fact(1, 200, ("traffic",)), fact(3, 201, ("rude",), removed=True)]
    result = compute(ratings, FOUNDING)
    text = explain(result)
    assert result.score == Decimal("4.70")  # (10 × 4.7 + 18×5 + 2×2) / (10 + 20) = 141 / 30
    assert "(10 × 4.7 + 94) / (10 + 20) = 4.70" in text
    assert "20 ratings that count, whose stars add up to 94 (a plain average of 4.70)" in text
    assert "agreement version 1" in text
    assert "1 rating removed on appeal" in text
    assert "1 rating below five stars whose every tag" in text
    assert "app_problem, pricing, traffic" in text
    assert "0 older ratings beyond the most recent 100" in text
    assert "never changes your status" in text


def test_the_explanation_names_support_below_the_threshold() -> None:
    result = compute([fact(1, i) for i in range(30)], FOUNDING)
    assert result.score is not None and result.score < FOUNDING.support_threshold
    assert result.below_support_threshold
    assert "a person from the co-op will reach out" in explain(result)


def test_degenerate_terms_give_no_score_rather_than_an_error() -> None:
    policy = dataclasses.replace(FOUNDING, min_ratings=0, prior_weight=0)
    assert compute([], policy).score is None


@pytest.mark.parametrize(
    "change",
    [
        {"window": 0},
        {"min_ratings": -1},
        {"prior_weight": -1},
        {"prior_mean": Decimal("5.5")},
        {"support_threshold": Decimal("0.5")},
        {"appeal_window_days": -2},
    ],
)
def test_invalid_terms_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="invalid reputation terms"):
        dataclasses.replace(FOUNDING, **change)


def test_terms_from_the_agreements_mapping() -> None:
    policy = ReputationPolicy.from_terms(
        agreement_version=3,
        terms={
            "window": 100,
            "min_ratings": 20,
            "prior_mean": "4.7",
            "prior_weight": 10,
            "rating_window_days": 7,
            "appeal_window_days": 30,
            "review_due_days": 14,
            "support_threshold": "4.2",
            "excluded_tags": ["traffic", "pricing", "app_problem"],
        },
    )
    assert policy == dataclasses.replace(FOUNDING, agreement_version=3)


# --- properties -------------------------------------------------------------------------------

tags = st.frozensets(st.sampled_from(sorted(TAG_CODES)), max_size=3)
facts = st.builds(
    lambda stars, minute, created, tag_set, removed: RatingFact(
        id=uuid.uuid4(),
        stars=stars,
        tags=tag_set,
        trip_completed_at=EPOCH + timedelta(minutes=minute),
        created_at=EPOCH + timedelta(minutes=minute + created),
        removed_on_appeal=removed,
    ),
    st.integers(1, 5),
    st.integers(0, 10_000),
    st.integers(0, 60 * 24 * 7),
    tags,
    st.booleans(),
)
policies = st.builds(
    lambda window, min_ratings, prior_mean, prior_weight, threshold, excluded: dataclasses.replace(
        FOUNDING,
        window=window,
        min_ratings=min_ratings,
        prior_mean=prior_mean,
        prior_weight=prior_weight,
        support_threshold=threshold,
        excluded_tags=excluded,
    ),
    st.integers(1, 30),
    st.integers(0, 10),
    st.decimals(min_value=1, max_value=5, places=1),
    st.integers(0, 20),
    st.decimals(min_value=1, max_value=5, places=1),
    st.frozensets(st.sampled_from(sorted(TAG_CODES)), max_size=6),
)
rating_lists = st.lists(facts, max_size=40)


@settings(max_examples=200)
@given(rating_lists, policies)
def test_score_is_within_the_stars_and_between_prior_and_mean(
    ratings: list[RatingFact], policy: ReputationPolicy
) -> None:
    result = compute(ratings, policy)
    assert result.counted + result.ratings_excluded == len(ratings)
    assert result.counted <= policy.window
    assert (result.score is None) == (
        result.counted < policy.min_ratings or policy.prior_weight + result.counted == 0
    )
    if result.score is not None:
        assert Decimal(1) <= result.score <= Decimal(5)
        if result.counted:
            mean = Decimal(result.stars_sum) / result.counted
            low, high = sorted((mean, policy.prior_mean))
            assert low - Decimal("0.005") <= result.score <= high + Decimal("0.005")
        else:
            assert result.score == policy.prior_mean.quantize(Decimal("0.01"))


@settings(max_examples=200)
@given(rating_lists, policies, st.randoms())
def test_order_of_the_input_does_not_matter(
    ratings: list[RatingFact], policy: ReputationPolicy, random: object
) -> None:
    shuffled = list(ratings)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert compute(shuffled, policy).reasons == compute(ratings, policy).reasons
    assert compute(shuffled, policy).score == compute(ratings, policy).score


@settings(max_examples=200)
@given(rating_lists, policies, facts)
def test_a_removed_rating_is_as_if_it_had_never_been(
    ratings: list[RatingFact], policy: ReputationPolicy, extra: RatingFact
) -> None:
    removed = dataclasses.replace(extra, removed_on_appeal=True)
    with_it = compute([*ratings, removed], policy)
    without = compute(ratings, policy)
    assert with_it.score == without.score
    assert with_it.counted == without.counted
    assert with_it.reasons[removed.id] is ExcludedReason.appeal_upheld


@settings(max_examples=200)
@given(rating_lists, policies, facts, st.integers(1, 4))
def test_a_low_rating_blaming_only_excluded_causes_is_as_if_it_had_never_been(
    ratings: list[RatingFact], policy: ReputationPolicy, extra: RatingFact, stars: int
) -> None:
    if not policy.excluded_tags:
        return
    blamed = dataclasses.replace(
        extra, stars=stars, tags=policy.excluded_tags, removed_on_appeal=False
    )
    with_it = compute([*ratings, blamed], policy)
    assert with_it.score == compute(ratings, policy).score
    assert with_it.reasons[blamed.id] is ExcludedReason.excluded_tags


@settings(max_examples=200)
@given(rating_lists, policies, facts)
def test_a_new_five_never_lowers_and_a_new_one_never_raises_the_score(
    ratings: list[RatingFact], policy: ReputationPolicy, extra: RatingFact
) -> None:
    latest = max((r.trip_completed_at for r in ratings), default=EPOCH)
    newest = dataclasses.replace(
        extra, trip_completed_at=latest + timedelta(minutes=1), removed_on_appeal=False
    )
    before = compute(ratings, policy).score
    five = compute([*ratings, dataclasses.replace(newest, stars=5)], policy).score
    one = compute([*ratings, dataclasses.replace(newest, stars=1, tags=frozenset())], policy).score
    if before is not None:
        assert five is not None and five >= before
        assert one is not None and one <= before


@settings(max_examples=100)
@given(rating_lists, policies)
def test_only_the_most_recent_countable_ratings_count(
    ratings: list[RatingFact], policy: ReputationPolicy
) -> None:
    reasons = compute(ratings, policy).reasons
    counted = [r for r in ratings if reasons[r.id] is None]
    beyond = [r for r in ratings if reasons[r.id] is ExcludedReason.beyond_window]
    if beyond:
        assert len(counted) == policy.window
        assert min(r.recency for r in counted) > max(r.recency for r in beyond)
