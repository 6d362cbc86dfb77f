"""Domain operations of reputation: rateable trips, ratings, the score, appeals, support cases.

No operation here reads or writes a driver's status: a rating, a score or an appeal never
changes whether someone drives (see `drivers.status` for the one recorded, human path).

No operation reads the clock: the caller passes `now` (the routes take it from
`coop.clock`), so the tests can set the time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from coop import audit, paging
from reputation import score as scoring
from reputation.exceptions import (
    AlreadyAppealed,
    AlreadyRated,
    AppealAlreadyDecided,
    AppealNotFound,
    AppealWindowClosed,
    NotYourRating,
    NotYourTrip,
    OwnAppeal,
    RatingNotFound,
    RatingWindowClosed,
    SupportCaseClosed,
    SupportCaseNotFound,
    TripNotCompleted,
)
from reputation.models import (
    Appeal,
    AppealOutcome,
    AppealStatus,
    RateableTrip,
    Rating,
    SupportCase,
)
from reputation.policy import PolicySource, ReputationPolicy

AUDIT_KIND_APPEAL_DECISION = "appeal_decision"


async def record_rateable_trip(
    *,
    session: AsyncSession,
    trip_id: uuid.UUID,
    rider_id: uuid.UUID,
    driver_id: uuid.UUID,
    completed_at: datetime,
    now: datetime,
) -> None:
    """Notes that a trip completed and may be rated; joins the caller's transaction, idempotent."""
    if completed_at.tzinfo is None:
        raise ValueError("completed_at must be timezone-aware")
    await session.execute(
        insert(RateableTrip)
        .values(
            trip_id=trip_id,
            rider_id=rider_id,
            driver_id=driver_id,
            completed_at=completed_at,
            recorded_at=now,
        )
        .on_conflict_do_nothing(index_elements=[RateableTrip.trip_id])
    )


async def _lock_driver_reputation(session: AsyncSession, driver_id: uuid.UUID) -> None:
    # Serialises the operations that change one driver's score, so the support-case rule sees
    # every rating; other drivers are not held up.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"reputation:{driver_id}"},
    )


async def rate(
    *,
    session: AsyncSession,
    policy_source: PolicySource,
    trip_id: uuid.UUID,
    rider_id: uuid.UUID,
    stars: int,
    comment: str | None,
    tags: Sequence[str],
    now: datetime,
) -> Rating:
    """The trip's rider rates its driver, once, within the agreement's rating window."""
    trip = await session.get(RateableTrip, trip_id)
    if trip is None:
        raise TripNotCompleted(
            f"Trip {trip_id} has no completion on record: it is still under way, was cancelled, "
            "or does not exist. A trip can be rated once it is completed."
        )
    if trip.rider_id != rider_id:
        raise NotYourTrip(f"Trip {trip_id} was not yours to rate")
    policy = await policy_source(session, trip.completed_at)
    closes_at = trip.completed_at + timedelta(days=policy.rating_window_days)
    if now > closes_at:
        raise RatingWindowClosed(
            f"Trip {trip_id} could be rated until {closes_at.isoformat()} "
            f"({policy.rating_window_days} days after it ended, agreement version "
            f"{policy.agreement_version})"
        )
    await _lock_driver_reputation(session, trip.driver_id)
    if await session.scalar(select(Rating.id).where(Rating.trip_id == trip_id)) is not None:
        raise AlreadyRated(f"Trip {trip_id} has been rated already; a trip is rated once")
    rating = Rating(
        id=uuid.uuid4(),
        trip_id=trip_id,
        driver_id=trip.driver_id,
        rider_id=rider_id,
        stars=stars,
        comment=comment,
        tags=list(tags),
        trip_completed_at=trip.completed_at,
        created_at=now,
    )
    session.add(rating)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent rating of the same trip won
        await session.rollback()
        raise AlreadyRated(f"Trip {trip_id} has been rated already; a trip is rated once") from exc
    await _follow_up_support(
        session=session, policy_source=policy_source, driver_id=trip.driver_id, now=now
    )
    await session.commit()
    return rating


def _facts(ratings: Sequence[Rating]) -> list[scoring.RatingFact]:
    return [
        scoring.RatingFact(
            id=rating.id,
            stars=rating.stars,
            tags=frozenset(rating.tags),
            trip_completed_at=rating.trip_completed_at,
            created_at=rating.created_at,
            removed_on_appeal=(
                rating.appeal is not None and rating.appeal.outcome is AppealOutcome.rating_removed
            ),
        )
        for rating in ratings
    ]


def rating_key(rating: Rating) -> tuple[datetime, datetime, uuid.UUID]:
    """The order of a driver's ratings (newest trip first), descending."""
    return (rating.trip_completed_at, rating.created_at, rating.id)


async def ratings_about(*, session: AsyncSession, driver_id: uuid.UUID) -> list[Rating]:
    """Every rating about a driver, newest trip first, with its appeal."""
    rows = await session.scalars(
        select(Rating)
        .where(Rating.driver_id == driver_id)
        .order_by(Rating.trip_completed_at.desc(), Rating.created_at.desc(), Rating.id.desc())
    )
    return list(rows)


def revealed_at(ratings: Sequence[Rating], after: int) -> dict[uuid.UUID, datetime | None]:
    """When each of a driver's ratings became visible to them: once `after` newer ratings of
    theirs exist (the agreement's reputation.reveal_after_ratings), at the moment the last of
    those was given; None while it is still held back. With `after` 0, when it was given."""
    ordered = sorted(ratings, key=lambda rating: (rating.created_at, rating.id))
    return {
        rating.id: ordered[index + after].created_at if index + after < len(ordered) else None
        for index, rating in enumerate(ordered)
    }


async def visible_standing(
    *,
    session: AsyncSession,
    policy_source: PolicySource,
    driver_id: uuid.UUID,
    at: datetime,
) -> tuple[scoring.Score, list[Rating]]:
    """The driver's score (every rating counts) and the ratings they may see: those with at
    least reputation.reveal_after_ratings newer ratings after them."""
    result, ratings = await standing(
        session=session, policy_source=policy_source, driver_id=driver_id, at=at
    )
    shown = revealed_at(ratings, result.policy.reveal_after_ratings)
    return result, [rating for rating in ratings if shown[rating.id] is not None]


async def standing(
    *,
    session: AsyncSession,
    policy_source: PolicySource,
    driver_id: uuid.UUID,
    at: datetime,
) -> tuple[scoring.Score, list[Rating]]:
    """A driver's score under the agreement in force at `at`, with the ratings it was computed
    from."""
    policy = await policy_source(session, at)
    ratings = await ratings_about(session=session, driver_id=driver_id)
    return scoring.compute(_facts(ratings), policy), ratings


async def _follow_up_support(
    *, session: AsyncSession, policy_source: PolicySource, driver_id: uuid.UUID, now: datetime
) -> None:
    """Opens a support case when the score falls below the threshold; one case per dip."""
    result, _ = await standing(
        session=session, policy_source=policy_source, driver_id=driver_id, at=now
    )
    current = await session.scalar(
        select(SupportCase).where(
            SupportCase.driver_id == driver_id, SupportCase.recovered_at.is_(None)
        )
    )
    if result.below_support_threshold:
        if current is None:
            assert result.score is not None
            session.add(
                SupportCase(
                    id=uuid.uuid4(),
                    driver_id=driver_id,
                    opened_at=now,
                    score=result.score,
                    support_threshold=result.policy.support_threshold,
                    agreement_version=result.policy.agreement_version,
                )
            )
    elif current is not None and result.score is not None:
        current.recovered_at = now
    await session.flush()


async def get_rating(*, session: AsyncSession, rating_id: uuid.UUID) -> Rating:
    rating = await session.get(Rating, rating_id)
    if rating is None:
        raise RatingNotFound(f"No rating {rating_id}")
    return rating


async def ratings_by_rider(*, session: AsyncSession, rider_id: uuid.UUID) -> list[Rating]:
    """Every rating a rider gave, newest first."""
    rows = await session.scalars(
        select(Rating).where(Rating.rider_id == rider_id).order_by(Rating.created_at.desc())
    )
    return list(rows)


async def rateable_trips_of_rider(
    *, session: AsyncSession, rider_id: uuid.UUID
) -> list[RateableTrip]:
    rows = await session.scalars(
        select(RateableTrip)
        .where(RateableTrip.rider_id == rider_id)
        .order_by(RateableTrip.completed_at.desc())
    )
    return list(rows)


async def file_appeal(
    *,
    session: AsyncSession,
    policy_source: PolicySource,
    rating_id: uuid.UUID,
    driver_id: uuid.UUID,
    statement: str,
    now: datetime,
) -> Appeal:
    """The rated driver appeals a rating, once, within the agreement's appeal window."""
    rating = await get_rating(session=session, rating_id=rating_id)
    if rating.driver_id != driver_id:
        raise NotYourRating(f"Rating {rating_id} is not about you")
    # A rating still held back from its driver does not exist for them yet; once shown, it
    # may be appealed for the whole window, counted from when it was shown.
    policy_now = await policy_source(session, now)
    shown_at = revealed_at(
        await ratings_about(session=session, driver_id=driver_id),
        policy_now.reveal_after_ratings,
    ).get(rating.id)
    if shown_at is None:
        raise RatingNotFound(f"No rating {rating_id}")
    if rating.appeal is not None:
        raise AlreadyAppealed(
            f"Rating {rating_id} has been appealed already (appeal "
            f"{rating.appeal.id}); a rating is appealed once"
        )
    rated_under = await policy_source(session, rating.created_at)
    closes_at = shown_at + timedelta(days=rated_under.appeal_window_days)
    if now > closes_at:
        raise AppealWindowClosed(
            f"Rating {rating_id} could be appealed until {closes_at.isoformat()} "
            f"({rated_under.appeal_window_days} days after it was shown to you, agreement version "
            f"{rated_under.agreement_version})"
        )
    policy = policy_now
    appeal = Appeal(
        id=uuid.uuid4(),
        rating_id=rating_id,
        driver_id=driver_id,
        statement=statement,
        status=AppealStatus.open,
        filed_at=now,
        due_by=now + timedelta(days=policy.review_due_days),
        rating=rating,
    )
    session.add(appeal)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent appeal of the same rating won
        await session.rollback()
        raise AlreadyAppealed(
            f"Rating {rating_id} has been appealed already; a rating is appealed once"
        ) from exc
    await session.commit()
    return appeal


async def get_appeal(*, session: AsyncSession, appeal_id: uuid.UUID) -> Appeal:
    appeal = await session.get(Appeal, appeal_id)
    if appeal is None:
        raise AppealNotFound(f"No appeal {appeal_id}")
    return appeal


APPEALS_ORDER = ((Appeal.due_by, False), (Appeal.filed_at, False), (Appeal.id, False))
SUPPORT_CASES_ORDER = ((SupportCase.opened_at, False), (SupportCase.id, False))


def appeal_key(appeal: Appeal) -> tuple[datetime, datetime, uuid.UUID]:
    return (appeal.due_by, appeal.filed_at, appeal.id)


def support_case_key(case: SupportCase) -> tuple[datetime, uuid.UUID]:
    return (case.opened_at, case.id)


async def list_appeals(
    *,
    session: AsyncSession,
    driver_id: uuid.UUID | None,
    status: str | None,
    now: datetime,
    limit: int | None = None,
    after: tuple[datetime, datetime, uuid.UUID] | None = None,
) -> list[Appeal]:
    """Appeals, oldest due first: every one (driver_id None) or one driver's own; at most
    `limit`, those after the key `after` (paging)."""
    query = select(Appeal).order_by(*(column for column, _ in APPEALS_ORDER))
    if after is not None:
        query = query.where(paging.after_key(APPEALS_ORDER, after))
    if limit is not None:
        query = query.limit(limit)
    if driver_id is not None:
        query = query.where(Appeal.driver_id == driver_id)
    if status == "open":
        query = query.where(Appeal.status == AppealStatus.open)
    elif status == "decided":
        query = query.where(Appeal.status == AppealStatus.decided)
    elif status == "overdue":
        query = query.where(Appeal.status == AppealStatus.open, Appeal.due_by < now)
    return list(await session.scalars(query))


async def decide_appeal(
    *,
    session: AsyncSession,
    policy_source: PolicySource,
    appeal_id: uuid.UUID,
    reviewer_id: uuid.UUID,
    outcome: AppealOutcome,
    reason: str,
    now: datetime,
) -> Appeal:
    """A reviewer who is not the appellant decides an open appeal; exactly one decision stands."""
    appeal = await get_appeal(session=session, appeal_id=appeal_id)
    if appeal.driver_id == reviewer_id:
        raise OwnAppeal("You filed this appeal; another reviewer must decide it")
    decided = await session.scalar(
        update(Appeal)
        .where(Appeal.id == appeal_id, Appeal.status == AppealStatus.open)
        .values(
            status=AppealStatus.decided,
            outcome=outcome,
            reason=reason,
            decided_by=reviewer_id,
            decided_at=now,
        )
        .returning(Appeal.id)
        .execution_options(synchronize_session=False)
    )
    if decided is None:
        await session.rollback()
        raise AppealAlreadyDecided(f"Appeal {appeal_id} has been decided already")
    await audit.append(
        session=session,
        kind=AUDIT_KIND_APPEAL_DECISION,
        subject=f"appeal:{appeal_id}",
        content={
            "appeal_id": str(appeal_id),
            "rating_id": str(appeal.rating_id),
            "outcome": outcome.value,
            "filed_at": appeal.filed_at.isoformat(),
            "due_by": appeal.due_by.isoformat(),
            "decided_at": now.isoformat(),
        },
    )
    if outcome is AppealOutcome.rating_removed:
        await session.refresh(appeal)
        await _lock_driver_reputation(session, appeal.driver_id)
        await _follow_up_support(
            session=session, policy_source=policy_source, driver_id=appeal.driver_id, now=now
        )
    await session.commit()
    await session.refresh(appeal)
    return appeal


async def current_support_case(
    *, session: AsyncSession, driver_id: uuid.UUID
) -> SupportCase | None:
    """The support case a driver should see: still open, or covering the present dip."""
    return await session.scalar(
        select(SupportCase)
        .where(
            SupportCase.driver_id == driver_id,
            (SupportCase.closed_at.is_(None)) | (SupportCase.recovered_at.is_(None)),
        )
        .order_by(SupportCase.opened_at.desc())
        .limit(1)
    )


async def support_cases_of(*, session: AsyncSession, driver_id: uuid.UUID) -> list[SupportCase]:
    rows = await session.scalars(
        select(SupportCase)
        .where(SupportCase.driver_id == driver_id)
        .order_by(SupportCase.opened_at)
    )
    return list(rows)


async def list_support_cases(
    *,
    session: AsyncSession,
    open_only: bool,
    limit: int | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[SupportCase]:
    """Support cases for the people who reach out, oldest first (paged like appeals)."""
    query = select(SupportCase).order_by(*(column for column, _ in SUPPORT_CASES_ORDER))
    if after is not None:
        query = query.where(paging.after_key(SUPPORT_CASES_ORDER, after))
    if limit is not None:
        query = query.limit(limit)
    if open_only:
        query = query.where(SupportCase.closed_at.is_(None))
    return list(await session.scalars(query))


async def close_support_case(
    *, session: AsyncSession, case_id: uuid.UUID, note: str, now: datetime
) -> SupportCase:
    """A person records that they reached out, closing the case."""
    closed = await session.scalar(
        update(SupportCase)
        .where(SupportCase.id == case_id, SupportCase.closed_at.is_(None))
        .values(closed_at=now, note=note)
        .returning(SupportCase.id)
        .execution_options(synchronize_session=False)
    )
    if closed is None:
        exists = await session.scalar(
            select(func.count()).select_from(SupportCase).where(SupportCase.id == case_id)
        )
        await session.rollback()
        if not exists:
            raise SupportCaseNotFound(f"No support case {case_id}")
        raise SupportCaseClosed(f"Support case {case_id} is closed already")
    await session.commit()
    case = await session.get(SupportCase, case_id, populate_existing=True)
    assert case is not None
    return case


def policy_summary(policy: ReputationPolicy) -> dict[str, object]:
    """The terms a report names, for readers who want to check the arithmetic."""
    return {
        "agreement_version": policy.agreement_version,
        "window": policy.window,
        "min_ratings": policy.min_ratings,
        "prior_mean": f"{policy.prior_mean:.2f}",
        "prior_weight": policy.prior_weight,
        "excluded_tags": sorted(policy.excluded_tags),
    }
