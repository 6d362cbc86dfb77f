"""What each audience sees of a rating, and of a pay statement, is its own read model: an
allow-list of fields built by an explicit constructor from the row. A column added to the row
reaches nobody until someone adds it to a model on purpose."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel

from pay.models import LineKind, PayStatementLine
from pay.schemas import StatementLineOut
from reputation.models import Appeal, AppealStatus, Rating
from reputation.schemas import (
    AppealOut,
    AppealRating,
    DriverRatingOut,
    OverdueAppealOut,
    RatingOut,
    RatingsReportOut,
)
from reputation.views import appeal_out, rating_for_driver, rating_for_rider

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
KEY = b"k" * 32
# A column someone might add to the rating row tomorrow (say, the rider's device), set on an
# instance as the ORM would load it.
LEAK = "a-new-column-no-audience-was-given"

# Each audience's fields, written out: a field added to a model fails here first, so that
# widening what an audience sees is a decision made on purpose, in review.
RIDER_SEES = {"id", "trip_id", "stars", "comment", "tags", "created_at"}
DRIVER_SEES = RIDER_SEES | {
    "rater",
    "trip_completed_at",
    "counted",
    "excluded_reason",
    "appeal",
}
REVIEWER_SEES = RIDER_SEES | {"rater"}
# The columns of the rating row that no audience's view of a rating carries as such: who rated
# reaches the driver and reviewers only as a pseudonym (`rater`).
WITHHELD = {"rider_id", "driver_id"}


def _rating() -> Rating:
    rating = Rating(
        id=uuid.uuid4(),
        trip_id=uuid.uuid4(),
        driver_id=uuid.uuid4(),
        rider_id=uuid.uuid4(),
        stars=2,
        comment="late",
        tags=["late"],
        trip_completed_at=NOW - timedelta(hours=2),
        created_at=NOW - timedelta(hours=1),
    )
    rating.device = LEAK  # type: ignore[attr-defined]
    return rating


def _appeal(rating: Rating) -> Appeal:
    appeal = Appeal(
        id=uuid.uuid4(),
        rating_id=rating.id,
        driver_id=rating.driver_id,
        statement="the road was closed",
        status=AppealStatus.open,
        filed_at=NOW - timedelta(minutes=30),
        due_by=NOW + timedelta(days=3),
        outcome=None,
        reason=None,
        decided_by=None,
        decided_at=None,
    )
    appeal.rating = rating
    appeal.reviewer_notes = LEAK  # type: ignore[attr-defined]
    return appeal


def _wire(model: BaseModel) -> str:
    return json.dumps(model.model_dump(mode="json"))


def test_each_audience_model_lists_its_fields() -> None:
    assert set(RatingOut.model_fields) == RIDER_SEES
    assert set(DriverRatingOut.model_fields) == DRIVER_SEES
    assert set(AppealRating.model_fields) == REVIEWER_SEES
    assert "rating" in AppealOut.model_fields  # the reviewer's view of the rating, nested
    # The public sees counts, and when appeals wait past their deadline: not one field of a
    # rating, nor whose appeal it is.
    assert not set(RatingsReportOut.model_fields) & (DRIVER_SEES | WITHHELD)
    assert set(OverdueAppealOut.model_fields) == {"filed_at", "due_by", "late_s"}


def test_every_column_of_the_rating_row_is_shown_on_purpose_or_withheld() -> None:
    """A new column fails this test until it is given to an audience's model or withheld."""
    columns = {column.name for column in Rating.__table__.columns}
    decided = RIDER_SEES | DRIVER_SEES | REVIEWER_SEES | WITHHELD
    assert columns <= decided, f"columns no audience was decided for: {columns - decided}"
    for model in (RatingOut, DriverRatingOut, AppealRating):
        assert not set(model.model_fields) & WITHHELD


def test_a_column_added_to_the_rating_row_reaches_no_audience() -> None:
    rating = _rating()
    appeal = _appeal(rating)
    rating.appeal = appeal
    driver_view = rating_for_driver(rating, reason=None, key=KEY, now=NOW)
    reviewer_view = appeal_out(appeal, key=KEY, now=NOW)
    views: dict[str, BaseModel] = {
        "rider": rating_for_rider(rating),
        "driver": driver_view,
        "reviewer": reviewer_view,
    }
    for audience, view in views.items():
        wire = _wire(view)
        assert LEAK not in wire, audience
        assert "device" not in wire and "reviewer_notes" not in wire, audience
        assert str(rating.rider_id) not in wire, audience  # the rater only as a pseudonym
    # What each view does carry came from the row, field by field.
    assert driver_view.stars == 2 and driver_view.counted
    assert reviewer_view.rating.rater.startswith("rider-")


def test_a_column_added_to_a_statement_line_reaches_no_driver() -> None:
    line = PayStatementLine(
        trip_id=uuid.uuid4(),
        period_start=date(2026, 3, 2),
        driver_id=uuid.uuid4(),
        kind=LineKind.trip,
        adjustment=False,
        assigned_at=NOW - timedelta(hours=1),
        ended_at=NOW,
        engaged_seconds=3600,
        distance_m=5000,
        duration_s=900,
        fare_total=Decimal("12.00"),
        commission=Decimal("1.20"),
        driver_earnings=Decimal("10.80"),
        cancellation_fee=Decimal("0"),
        agreement_version=1,
        currency="EUR",
    )
    line.rider_note = LEAK  # type: ignore[attr-defined]
    wire = _wire(StatementLineOut.of(line))
    assert LEAK not in wire and "rider_note" not in wire
    # The driver's statement names trips, never the statement's own key columns again.
    assert not {"driver_id", "period_start"} & set(StatementLineOut.model_fields)


def test_the_driver_and_the_operator_each_see_a_statement_through_their_own_model() -> None:
    """The driver's statement lists its trips and totals (`StatementOut`); the operators see a
    statement only on the review list (`GET /v1/pay/review`), as a high top-up beside the
    period's median: no trip, no fare, no earnings."""
    from dataclasses import fields

    from pay.review import HighTopUp
    from pay.schemas import StatementOut, StatementSummaryOut

    operator_sees = {field.name for field in fields(HighTopUp)}
    assert operator_sees == {
        "period_start",
        "driver_id",
        "top_up",
        "median_top_up",
        "engaged_seconds",
    }
    assert not operator_sees & {"lines", "fares_total", "earnings_total", "pay_total", "trip_id"}
    assert set(StatementOut.model_fields) == set(StatementSummaryOut.model_fields) | {"lines"}
    # A driver's statement is about them: it does not name its driver, nor other drivers.
    assert "driver_id" not in StatementOut.model_fields
    assert "median_top_up" not in StatementOut.model_fields
