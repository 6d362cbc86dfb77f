"""The reputation domain on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)

from coop.frames import Frame
from coop.text import FreeText
from reputation.models import (
    COMMENT_MAX_CHARS,
    REASON_MAX_CHARS,
    STATEMENT_MAX_CHARS,
    AppealOutcome,
    AppealStatus,
)
from reputation.policy import STARS_MAX, STARS_MIN
from reputation.score import ExcludedReason
from reputation.tags import MAX_TAGS_PER_RATING, TAG_CODES

# Decimals travel as strings with two places, like money.
TwoPlaces = Annotated[
    Decimal, PlainSerializer(lambda value: f"{value:.2f}", return_type=str, when_used="json")
]


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stars: int = Field(ge=STARS_MIN, le=STARS_MAX, strict=True)
    comment: Annotated[str, FreeText(max_chars=COMMENT_MAX_CHARS, min_chars=0)] | None = None
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS_PER_RATING)

    @field_validator("comment")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return value.strip()

    @field_validator("tags")
    @classmethod
    def _known_tags(cls, value: list[str]) -> list[str]:
        unknown = [tag for tag in value if tag not in TAG_CODES]
        if unknown:
            raise ValueError(
                f"unknown tag(s) {', '.join(map(repr, unknown))}; "
                "GET /v1/ratings/tags lists the tags that exist"
            )
        if len(set(value)) != len(value):
            raise ValueError("a tag may appear only once")
        return value


class RatingOut(BaseModel):
    """A rating as its rider sees it."""

    id: uuid.UUID
    trip_id: uuid.UUID
    stars: int
    comment: str | None
    tags: list[str]
    created_at: datetime


class AppealSummary(BaseModel):
    id: uuid.UUID
    status: AppealStatus
    overdue: bool
    filed_at: datetime
    due_by: datetime
    outcome: AppealOutcome | None
    reason: str | None
    decided_at: datetime | None


class DriverRatingOut(BaseModel):
    """A rating as the rated driver sees it: the rater only as a pseudonym."""

    id: uuid.UUID
    trip_id: uuid.UUID
    stars: int
    comment: str | None
    tags: list[str]
    rater: str
    created_at: datetime
    trip_completed_at: datetime
    counted: bool
    excluded_reason: ExcludedReason | None
    appeal: AppealSummary | None


class AppealRating(BaseModel):
    """The rating under appeal, as reviewers and the appellant see it."""

    id: uuid.UUID
    trip_id: uuid.UUID
    stars: int
    comment: str | None
    tags: list[str]
    rater: str
    created_at: datetime


class AppealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    statement: Annotated[str, FreeText(max_chars=STATEMENT_MAX_CHARS)]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: AppealOutcome
    reason: Annotated[str, FreeText(max_chars=REASON_MAX_CHARS)]


class AppealOut(BaseModel):
    id: uuid.UUID
    rating_id: uuid.UUID
    driver_id: uuid.UUID
    statement: str
    status: AppealStatus
    overdue: bool
    filed_at: datetime
    due_by: datetime
    outcome: AppealOutcome | None
    reason: str | None
    decided_at: datetime | None
    rating: AppealRating


class AppealDecidedFrame(Frame):
    """A person decided the driver's appeal of a rating."""

    model_config = ConfigDict(title="AppealDecided")

    type: Literal["appeal_decided"]
    appeal: AppealOut


AppealFilter = Literal["open", "decided", "overdue"]


class SupportCaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    driver_id: uuid.UUID
    opened_at: datetime
    score: TwoPlaces
    support_threshold: TwoPlaces
    agreement_version: int
    recovered_at: datetime | None
    closed_at: datetime | None
    note: str | None


class SupportCaseClose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, FreeText(max_chars=REASON_MAX_CHARS)]


class Computation(BaseModel):
    """Every number the score is computed from."""

    formula: str
    prior_mean: TwoPlaces
    prior_weight: int
    window: int
    min_ratings: int
    excluded_tags: list[str]
    ratings_counted: int
    stars_sum: int
    mean_of_counted: TwoPlaces | None
    support_threshold: TwoPlaces


class ReputationOut(BaseModel):
    score: TwoPlaces | None
    ratings_counted: int
    ratings_excluded: int
    excluded_by_reason: dict[ExcludedReason, int]
    method: str
    computation: Computation
    explanation: str
    agreement_version: int
    below_support_threshold: bool
    support_case: SupportCaseOut | None


class TagOut(BaseModel):
    code: str
    description: str
    outside_driver_control: bool
    excluded_by_agreement: bool


class TagsOut(BaseModel):
    agreement_version: int
    tags: list[TagOut]


# --- the public reports (GET /v1/transparency/ratings and /v1/transparency/data) ------------


class ExcludedCountOut(BaseModel):
    count: int
    share_percent: str = Field(description="Of all ratings, two places")


class RatingsTotalsOut(BaseModel):
    total: int
    distribution: dict[str, int] = Field(description='Ratings by stars ("1" to "5")')
    counted: int
    excluded: dict[str, ExcludedCountOut] = Field(description="By reason (ExcludedReason)")


class AppealsTotalsOut(BaseModel):
    filed: int
    open: int
    decided: int
    by_outcome: dict[str, int]
    overdue: int
    decided_after_due: int
    median_time_to_decision_s: int | None
    p90_time_to_decision_s: int | None


class SupportCasesTotalsOut(BaseModel):
    opened: int
    open: int


class PolicySummaryOut(BaseModel):
    """The terms a report names, for readers who want to check the arithmetic."""

    agreement_version: int
    window: int
    min_ratings: int
    prior_mean: str
    prior_weight: int
    excluded_tags: list[str]


class RatingsReportOut(BaseModel):
    """The public's view of ratings: counts only, never a rating, a rater or a driver."""

    # Sent as the clock's own ISO text (`+00:00`), as this report always sent it.
    generated_at: str
    agreement_version: int
    ratings: RatingsTotalsOut
    appeals: AppealsTotalsOut
    support_cases: SupportCasesTotalsOut
    terms: PolicySummaryOut


class OverdueAppealOut(BaseModel):
    """The public's view of an appeal past its deadline: when, never whose or why."""

    filed_at: datetime
    due_by: datetime
    late_s: float = Field(description="How long past its deadline, in seconds")


class StoredInOut(BaseModel):
    table: str | None
    columns: list[str]
    where: str


class ExportedInOut(BaseModel):
    audience: str
    section: str


class DataKindOut(BaseModel):
    kind: str
    description: str
    purpose: str
    stored_in: list[StoredInOut]
    retention: str
    readers: list[str]
    exported_in: list[ExportedInOut]
    sold: bool


class NotPersonalOut(BaseModel):
    table: str
    columns: list[str]
    why: str


class DataRegisterOut(BaseModel):
    """The data register: each kind of personal data, where, how long, who reads it."""

    sold: bool
    statement: str
    readers_note: str
    kinds: list[DataKindOut]
    not_personal: list[NotPersonalOut]


# --- the personal-data exports (GET /v1/drivers/me/export, GET /v1/riders/me/export) --------

# A time in an export's own sections, as the export has always written it: the clock's ISO
# text (`+00:00`). The sections shared with other routes (ratings, appeals) keep those routes'.
ExportTime = Annotated[str, Field(description="RFC 3339")]


class ExportVehicleOut(BaseModel):
    plate: str
    seats: int
    wheelchair_accessible: bool
    make: str | None = None
    model: str | None = None
    colour: str | None = None


class ExportDriverAccountOut(BaseModel):
    id: uuid.UUID
    name: str
    member_number: str
    status: str
    committee: bool
    reviewer: bool
    simulated: bool
    created_at: ExportTime
    vehicle: ExportVehicleOut


class ExportTokenOut(BaseModel):
    """An access token's dates and role; the token itself is never kept, nor its hash shown."""

    role: str
    created_at: ExportTime
    expires_at: ExportTime | None
    revoked_at: ExportTime | None


class ExportStatusChangeOut(BaseModel):
    id: uuid.UUID
    from_status: str
    to_status: str
    reason: str
    changed_at: ExportTime


class ExportReputationOut(BaseModel):
    score: str | None
    ratings_counted: int
    agreement_version: int


class ExportDecisionOut(BaseModel):
    """An appeal the driver decided as a reviewer: their decision, not the appellant's case."""

    appeal_id: uuid.UUID
    outcome: AppealOutcome | None
    reason: str | None
    decided_at: ExportTime | None


class ExportSupportCaseOut(BaseModel):
    id: uuid.UUID
    opened_at: ExportTime
    score: str
    support_threshold: str
    recovered_at: ExportTime | None
    closed_at: ExportTime | None
    note: str | None


class DriverExportOut(BaseModel):
    """Everything kept about the calling driver. Other packages' sections (trips, positions,
    ballots, pay...) follow the built-in ones, each under its own name."""

    model_config = ConfigDict(extra="allow")

    exported_at: ExportTime
    account: ExportDriverAccountOut
    access_tokens: list[ExportTokenOut]
    status_changes: list[ExportStatusChangeOut]
    ratings_received: list[DriverRatingOut]
    reputation: ExportReputationOut
    appeals_filed: list[AppealOut]
    appeals_decided_as_reviewer: list[ExportDecisionOut]
    support_cases: list[ExportSupportCaseOut]


class ExportRiderAccountOut(BaseModel):
    id: uuid.UUID
    name: str
    first_name_shared_with_drivers: str | None
    created_at: ExportTime


class ExportTripOnRecordOut(BaseModel):
    trip_id: uuid.UUID
    driver_id: uuid.UUID
    completed_at: ExportTime


class RiderExportOut(BaseModel):
    """Everything kept about the calling rider; other packages' sections follow."""

    model_config = ConfigDict(extra="allow")

    exported_at: ExportTime
    account: ExportRiderAccountOut
    access_tokens: list[ExportTokenOut]
    completed_trips_on_record: list[ExportTripOnRecordOut]
    ratings_given: list[RatingOut]
