"""A person's review of a decision the service made automatically (docs/jurisdiction.md,
"Automated decisions"): anyone subject to one may ask, with what they want the person to know, and
an operator answers within the agreement's `reputation.review_due_days`, as appeals are decided.

Reputation keeps the requests beside the appeals (both are a person looking again at what a rule
decided); which decisions exist, and whether the caller was subject to the one they name (a party
to the trip, the driver of the offer), is the composition root's to check (`server/decisions.py`),
so this module imports no other domain.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import DateTime, Enum, String, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from coop import audit
from coop.auth import Principal
from coop.db import Base
from coop.errors import Conflict, NotFound
from coop.text import FreeText

STATEMENT_MAX_CHARS = 2000
# Open requests one account may have at once: enough for any real grievance, not a flood.
MAX_OPEN_PER_ACCOUNT = 5


class ReviewOutcome(enum.StrEnum):
    upheld = "upheld"  # the person looked again and the decision stands, for the reason given
    changed = "changed"  # the person changed it (the answer says what was done)


class DecisionReview(Base):
    __tablename__ = "reputation_decision_review"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Who asked: a rider's or a driver's account (the role and the account's id).
    requester_role: Mapped[str] = mapped_column(String(16))
    requester_id: Mapped[uuid.UUID] = mapped_column(index=True)
    decision: Mapped[str] = mapped_column(String(40))
    # What it is about, where the decision concerned one: a trip or an offer (checked by the
    # composition root to be the requester's).
    trip_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    offer_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    statement: Mapped[str] = mapped_column(String(STATEMENT_MAX_CHARS))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[ReviewOutcome | None] = mapped_column(
        Enum(ReviewOutcome, name="decision_review_outcome"), default=None
    )
    answer: Mapped[str | None] = mapped_column(String(STATEMENT_MAX_CHARS), default=None)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: str = Field(
        min_length=1, max_length=40, description="a key of GET /v1/transparency/automated-decisions"
    )
    trip_id: uuid.UUID | None = None
    offer_id: uuid.UUID | None = None
    statement: Annotated[str, FreeText(max_chars=STATEMENT_MAX_CHARS)]


class ReviewAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: ReviewOutcome
    answer: Annotated[str, FreeText(max_chars=STATEMENT_MAX_CHARS)]


class ReviewOut(BaseModel):
    """A review request as its requester and the operators see it."""

    id: uuid.UUID
    decision: str
    trip_id: uuid.UUID | None
    offer_id: uuid.UUID | None
    statement: str
    requested_at: datetime
    due_at: datetime
    overdue: bool
    outcome: ReviewOutcome | None
    answer: str | None
    answered_at: datetime | None

    @classmethod
    def of(cls, review: DecisionReview, *, now: datetime) -> ReviewOut:
        return cls(
            id=review.id,
            decision=review.decision,
            trip_id=review.trip_id,
            offer_id=review.offer_id,
            statement=review.statement,
            requested_at=review.requested_at,
            due_at=review.due_at,
            overdue=review.answered_at is None and now > review.due_at,
            outcome=review.outcome,
            answer=review.answer,
            answered_at=review.answered_at,
        )


class TooManyOpenReviews(Conflict):
    type = "too_many_open_reviews"
    title = "This account has as many open review requests as it may"


class AlreadyAnswered(Conflict):
    type = "review_already_answered"
    title = "A person has already answered this review request"


async def request(
    *,
    session: AsyncSession,
    principal: Principal,
    body: ReviewRequest,
    review_due_days: int,
    now: datetime,
) -> DecisionReview:
    """Records a request for a person's review, due in `review_due_days`, and audits it (the
    log names the request and the decision, never who asked nor what they wrote)."""
    assert principal.subject_id is not None
    open_count = await session.scalar(
        select(func.count())
        .select_from(DecisionReview)
        .where(
            DecisionReview.requester_id == principal.subject_id,
            DecisionReview.answered_at.is_(None),
        )
    )
    if int(open_count or 0) >= MAX_OPEN_PER_ACCOUNT:
        raise TooManyOpenReviews(
            f"{MAX_OPEN_PER_ACCOUNT} requests are still open; a person answers each by its due date"
        )
    review = DecisionReview(
        id=uuid.uuid4(),
        requester_role=principal.role.value,
        requester_id=principal.subject_id,
        decision=body.decision,
        trip_id=body.trip_id,
        offer_id=body.offer_id,
        statement=body.statement,
        requested_at=now,
        due_at=now + timedelta(days=review_due_days),
    )
    session.add(review)
    await session.flush()
    await audit.append(
        session=session,
        kind="decision_review_requested",
        subject=f"decision_review:{review.id}",
        content={"review_id": str(review.id), "decision": review.decision},
    )
    await session.commit()
    return review


async def mine(*, session: AsyncSession, principal: Principal) -> list[DecisionReview]:
    rows = await session.scalars(
        select(DecisionReview)
        .where(DecisionReview.requester_id == principal.subject_id)
        .order_by(DecisionReview.requested_at, DecisionReview.id)
    )
    return list(rows)


async def queue(*, session: AsyncSession, open_only: bool) -> list[DecisionReview]:
    """The operators' list, the most urgent first."""
    query = select(DecisionReview).order_by(DecisionReview.due_at, DecisionReview.id)
    if open_only:
        query = query.where(DecisionReview.answered_at.is_(None))
    return list(await session.scalars(query))


async def answer(
    *, session: AsyncSession, review_id: uuid.UUID, body: ReviewAnswer, now: datetime
) -> DecisionReview:
    """A person's answer; only the first one counts (two operators at once: one answers, the
    other is told it is answered)."""
    answered = await session.execute(
        update(DecisionReview)
        .where(DecisionReview.id == review_id, DecisionReview.answered_at.is_(None))
        .values(outcome=body.outcome, answer=body.answer, answered_at=now)
        .returning(DecisionReview.id)
    )
    if answered.first() is None:
        await session.rollback()
        if await session.get(DecisionReview, review_id) is None:
            raise NotFound(f"No review request {review_id}")
        raise AlreadyAnswered(f"Review request {review_id} is already answered")
    await audit.append(
        session=session,
        kind="decision_review_answered",
        subject=f"decision_review:{review_id}",
        content={"review_id": str(review_id), "outcome": body.outcome.value},
    )
    await session.commit()
    review = await session.get(DecisionReview, review_id, populate_existing=True)
    assert review is not None
    return review


async def overdue_count(*, session: AsyncSession, now: datetime) -> int:
    """Requests past their due date without an answer (the transparency figure)."""
    found = await session.scalar(
        select(func.count())
        .select_from(DecisionReview)
        .where(DecisionReview.answered_at.is_(None), DecisionReview.due_at < now)
    )
    return int(found or 0)
