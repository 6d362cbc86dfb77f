"""Shapes ratings and appeals for the wire; the rater only ever appears as a pseudonym."""

from __future__ import annotations

from datetime import datetime

from reputation.models import Appeal, Rating
from reputation.pseudonym import rater_pseudonym
from reputation.schemas import (
    AppealOut,
    AppealRating,
    AppealSummary,
    DriverRatingOut,
    RatingOut,
)
from reputation.score import ExcludedReason


def rating_for_rider(rating: Rating) -> RatingOut:
    return RatingOut(
        id=rating.id,
        trip_id=rating.trip_id,
        stars=rating.stars,
        comment=rating.comment,
        tags=list(rating.tags),
        created_at=rating.created_at,
    )


def appeal_summary(appeal: Appeal, now: datetime) -> AppealSummary:
    return AppealSummary(
        id=appeal.id,
        status=appeal.status,
        overdue=appeal.is_overdue(now),
        filed_at=appeal.filed_at,
        due_by=appeal.due_by,
        outcome=appeal.outcome,
        reason=appeal.reason,
        decided_at=appeal.decided_at,
    )


def rating_for_driver(
    rating: Rating, *, reason: ExcludedReason | None, key: bytes, now: datetime
) -> DriverRatingOut:
    return DriverRatingOut(
        id=rating.id,
        trip_id=rating.trip_id,
        stars=rating.stars,
        comment=rating.comment,
        tags=list(rating.tags),
        rater=rater_pseudonym(key=key, driver_id=rating.driver_id, rider_id=rating.rider_id),
        created_at=rating.created_at,
        trip_completed_at=rating.trip_completed_at,
        counted=reason is None,
        excluded_reason=reason,
        appeal=appeal_summary(rating.appeal, now) if rating.appeal is not None else None,
    )


def appeal_out(appeal: Appeal, *, key: bytes, now: datetime) -> AppealOut:
    rating = appeal.rating
    return AppealOut(
        id=appeal.id,
        rating_id=appeal.rating_id,
        driver_id=appeal.driver_id,
        statement=appeal.statement,
        status=appeal.status,
        overdue=appeal.is_overdue(now),
        filed_at=appeal.filed_at,
        due_by=appeal.due_by,
        outcome=appeal.outcome,
        reason=appeal.reason,
        decided_at=appeal.decided_at,
        rating=AppealRating(
            id=rating.id,
            trip_id=rating.trip_id,
            stars=rating.stars,
            comment=rating.comment,
            tags=list(rating.tags),
            rater=rater_pseudonym(key=key, driver_id=rating.driver_id, rider_id=rating.rider_id),
            created_at=rating.created_at,
        ),
    )
