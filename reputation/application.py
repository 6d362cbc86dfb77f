"""Reputation's application layer: what the API's routes and the co-op's pages both do.

Each function takes the caller (the driver a check yielded), the session and typed
collaborators, makes the checks that decide whether the caller may, and answers a read model
(`reputation.schemas`). The routes (`reputation.router`) and the pages (`server.web.pages`) are
adapters over these functions, so a check added here holds on both paths.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import TypeVar

from fastapi import FastAPI
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from coop import paging, pubsub
from coop.auth import Role
from coop.errors import Forbidden
from coop.push import sender as push
from coop.push.message import Urgency
from coop.redis_client import Redis
from drivers.dependencies import get_reviewer
from drivers.models import Driver
from reputation import data_register, export, service, transparency
from reputation.models import AppealOutcome
from reputation.policy import PolicySource
from reputation.schemas import (
    AppealDecidedFrame,
    AppealFilter,
    AppealOut,
    AppealsTotalsOut,
    Computation,
    DataKindOut,
    DataRegisterOut,
    DriverExportOut,
    DriverRatingOut,
    ExcludedCountOut,
    ExportedInOut,
    NotPersonalOut,
    OverdueAppealOut,
    PolicySummaryOut,
    RatingOut,
    RatingsReportOut,
    RatingsTotalsOut,
    ReputationOut,
    RiderExportOut,
    StoredInOut,
    SupportCaseOut,
    SupportCasesTotalsOut,
    TagOut,
    TagsOut,
)
from reputation.score import FORMULA, METHOD, explain
from reputation.tags import TAGS
from reputation.views import appeal_out, rating_for_driver, rating_for_rider
from riders.models import Rider

logger = logging.getLogger("coop.reputation")

T = TypeVar("T")
# A page of a list, and the cursor of the next page (None: this page is the last).
Page = tuple[list[T], str | None]


# --- ratings ---------------------------------------------------------------------------------


async def rate_trip(
    *,
    rider_id: uuid.UUID,
    trip_id: uuid.UUID,
    stars: int,
    comment: str | None,
    tags: list[str],
    session: AsyncSession,
    policy_source: PolicySource,
    now: datetime,
) -> RatingOut:
    """The trip's rider rates its driver: once, within the agreement's rating window."""
    rating = await service.rate(
        session=session,
        policy_source=policy_source,
        trip_id=trip_id,
        rider_id=rider_id,
        stars=stars,
        comment=comment,
        tags=tags,
        now=now,
    )
    return rating_for_rider(rating)


async def tags(*, session: AsyncSession, policy_source: PolicySource, now: datetime) -> TagsOut:
    """The tags a rating may carry, and which the agreement in force leaves out of the score."""
    policy = await policy_source(session, now)
    return TagsOut(
        agreement_version=policy.agreement_version,
        tags=[
            TagOut(
                code=tag.code,
                description=tag.description,
                outside_driver_control=tag.outside_driver_control,
                excluded_by_agreement=tag.code in policy.excluded_tags,
            )
            for tag in TAGS
        ],
    )


async def my_ratings(
    *,
    driver: Driver,
    session: AsyncSession,
    policy_source: PolicySource,
    key: bytes,
    now: datetime,
    limit: int,
    cursor: str | None,
) -> Page[DriverRatingOut]:
    """A page of the ratings about `driver` that they may see, newest trip first."""
    after = (
        None
        if cursor is None
        else paging.decode_cursor(cursor, "ratings", (datetime, datetime, uuid.UUID))
    )
    # Whether a rating counts depends on all of them: the standing is computed over every
    # rating, then one page of those the driver may see is shown.
    result, ratings = await service.visible_standing(
        session=session, policy_source=policy_source, driver_id=driver.id, at=now
    )
    following = paging.keyed_after(ratings, service.rating_key, after, descending=True)
    page, next_cursor = paging.page_of(following[: limit + 1], limit, service.rating_key, "ratings")
    shown = [
        rating_for_driver(rating, reason=result.reasons[rating.id], key=key, now=now)
        for rating in page
    ]
    return shown, next_cursor


async def my_reputation(
    *, driver: Driver, session: AsyncSession, policy_source: PolicySource, now: datetime
) -> ReputationOut:
    """The driver's score, which ratings count, and how the number was computed."""
    result, _ = await service.standing(
        session=session, policy_source=policy_source, driver_id=driver.id, at=now
    )
    policy = result.policy
    case = await service.current_support_case(session=session, driver_id=driver.id)
    return ReputationOut(
        score=result.score,
        ratings_counted=result.counted,
        ratings_excluded=result.ratings_excluded,
        excluded_by_reason=result.excluded,
        method=METHOD,
        computation=Computation(
            formula=FORMULA,
            prior_mean=policy.prior_mean,
            prior_weight=policy.prior_weight,
            window=policy.window,
            min_ratings=policy.min_ratings,
            excluded_tags=sorted(policy.excluded_tags),
            ratings_counted=result.counted,
            stars_sum=result.stars_sum,
            mean_of_counted=result.mean,
            support_threshold=policy.support_threshold,
        ),
        explanation=explain(result),
        agreement_version=policy.agreement_version,
        below_support_threshold=result.below_support_threshold,
        support_case=SupportCaseOut.model_validate(case) if case is not None else None,
    )


# --- appeals ---------------------------------------------------------------------------------


async def appeal_rating(
    *,
    driver: Driver,
    rating_id: uuid.UUID,
    statement: str,
    session: AsyncSession,
    policy_source: PolicySource,
    key: bytes,
    now: datetime,
) -> AppealOut:
    """The rated driver appeals a rating to a person: once, within the appeal window."""
    appeal = await service.file_appeal(
        session=session,
        policy_source=policy_source,
        rating_id=rating_id,
        driver_id=driver.id,
        statement=statement,
        now=now,
    )
    return appeal_out(appeal, key=key, now=now)


async def list_appeals(
    *,
    driver: Driver,
    session: AsyncSession,
    key: bytes,
    now: datetime,
    status: AppealFilter | None,
    limit: int,
    cursor: str | None,
) -> Page[AppealOut]:
    """Reviewers see every appeal, other drivers their own; oldest due first."""
    after = (
        None
        if cursor is None
        else paging.decode_cursor(cursor, "appeals", (datetime, datetime, uuid.UUID))
    )
    appeals = await service.list_appeals(
        session=session,
        driver_id=None if driver.reviewer else driver.id,
        status=status,
        now=now,
        limit=limit + 1,
        after=after,
    )
    page, next_cursor = paging.page_of(appeals, limit, service.appeal_key, "appeals")
    return [appeal_out(appeal, key=key, now=now) for appeal in page], next_cursor


async def read_appeal(
    *, driver: Driver, appeal_id: uuid.UUID, session: AsyncSession, key: bytes, now: datetime
) -> AppealOut:
    """One appeal, for its appellant or a reviewer."""
    appeal = await service.get_appeal(session=session, appeal_id=appeal_id)
    if appeal.driver_id != driver.id and not driver.reviewer:
        raise Forbidden("Only the appellant and reviewers may read an appeal")
    return appeal_out(appeal, key=key, now=now)


async def decide_appeal(
    *,
    driver: Driver,
    appeal_id: uuid.UUID,
    outcome: AppealOutcome,
    reason: str,
    session: AsyncSession,
    redis: Redis,
    policy_source: PolicySource,
    key: bytes,
    now: datetime,
) -> AppealOut:
    """A reviewer who is not the appellant decides; the appellant is told over their socket."""
    reviewer = await get_reviewer(driver)
    appeal = await service.decide_appeal(
        session=session,
        policy_source=policy_source,
        appeal_id=appeal_id,
        reviewer_id=reviewer.id,
        outcome=outcome,
        reason=reason,
        now=now,
    )
    decided = appeal_out(appeal, key=key, now=now)
    try:
        heard = await pubsub.to_driver(
            redis, appeal.driver_id, AppealDecidedFrame(type="appeal_decided", appeal=decided)
        )
    except (RedisError, OSError):
        # The decision is recorded; the appellant still sees it in GET /v1/appeals.
        logger.warning("could not push an appeal decision", exc_info=True)
    else:
        if heard == 0:  # no socket of theirs: their phone is told (coop.push)
            push.notify(redis, appeal_push(appeal.driver_id, decided))
    return decided


# A decision waits a week on the push service for a phone that is off.
APPEAL_PUSH_TTL_S = 7 * 24 * 3600


def appeal_push(driver_id: uuid.UUID, decided: AppealOut) -> push.Push:
    """The push of a decision to the appellant: which appeal and how it ended (the app fetches
    the reason)."""
    return push.Push(
        role=Role.driver,
        subject_id=driver_id,
        kind="appeal",
        data={
            "kind": "appeal",
            "appeal_id": str(decided.id),
            "outcome": decided.outcome.value if decided.outcome is not None else None,
        },
        ttl_s=APPEAL_PUSH_TTL_S,
        urgency=Urgency.normal,
        topic=f"appeal{decided.id.hex[:24]}",
    )


# --- support cases: the driver's own, and the admin's list ------------------------------------


async def my_support_cases(*, driver: Driver, session: AsyncSession) -> list[SupportCaseOut]:
    """The support cases opened for the driver, as they see them on their page."""
    cases = await service.support_cases_of(session=session, driver_id=driver.id)
    return [SupportCaseOut.model_validate(case) for case in cases]


async def list_support_cases(
    *, session: AsyncSession, open_only: bool, limit: int, cursor: str | None
) -> Page[SupportCaseOut]:
    after = (
        None
        if cursor is None
        else paging.decode_cursor(cursor, "support-cases", (datetime, uuid.UUID))
    )
    cases = await service.list_support_cases(
        session=session, open_only=open_only, limit=limit + 1, after=after
    )
    page, next_cursor = paging.page_of(cases, limit, service.support_case_key, "support-cases")
    return [SupportCaseOut.model_validate(case) for case in page], next_cursor


async def close_support_case(
    *, case_id: uuid.UUID, note: str, session: AsyncSession, now: datetime
) -> SupportCaseOut:
    case = await service.close_support_case(session=session, case_id=case_id, note=note, now=now)
    return SupportCaseOut.model_validate(case)


# --- the public's view: aggregates only ------------------------------------------------------


async def ratings_report(
    *, session: AsyncSession, policy_source: PolicySource, now: datetime
) -> RatingsReportOut:
    """Aggregate statistics of ratings and appeals; no one's data, only counts."""
    policy = await policy_source(session, now)
    report = await transparency.ratings_report(session=session, policy=policy, now=now)
    return RatingsReportOut(
        generated_at=now.isoformat(),
        agreement_version=policy.agreement_version,
        ratings=RatingsTotalsOut(
            total=report.total,
            distribution={str(stars): n for stars, n in report.distribution.items()},
            counted=report.counted,
            excluded={
                reason.value: ExcludedCountOut(
                    count=count,
                    share_percent=f"{transparency.percent(count, report.total)}",
                )
                for reason, count in report.excluded.items()
            },
        ),
        appeals=AppealsTotalsOut(
            filed=report.appeals_filed,
            open=report.appeals_open,
            decided=report.appeals_decided,
            by_outcome={outcome.value: n for outcome, n in report.appeals_by_outcome.items()},
            overdue=report.appeals_overdue,
            decided_after_due=report.appeals_decided_late,
            median_time_to_decision_s=report.median_time_to_decision_s,
            p90_time_to_decision_s=report.p90_time_to_decision_s,
        ),
        support_cases=SupportCasesTotalsOut(
            opened=report.support_cases_opened, open=report.support_cases_open
        ),
        terms=PolicySummaryOut.model_validate(service.policy_summary(policy)),
    )


async def overdue_appeals(
    *, session: AsyncSession, now: datetime, limit: int
) -> list[OverdueAppealOut]:
    """Appeals past their deadline, the longest overdue first: when, never whose or why."""
    appeals = await service.list_appeals(
        session=session, driver_id=None, status="overdue", now=now, limit=limit
    )
    return [
        OverdueAppealOut(
            filed_at=appeal.filed_at,
            due_by=appeal.due_by,
            late_s=(now - appeal.due_by).total_seconds(),
        )
        for appeal in appeals
    ]


def data_register_report() -> DataRegisterOut:
    """The data register: each kind of personal data, where, how long, who reads it; none sold."""
    return DataRegisterOut(
        sold=False,
        statement=data_register.NONE_SOLD,
        readers_note=data_register.READERS_NOTE,
        kinds=[
            DataKindOut(
                kind=kind.key,
                description=kind.description,
                purpose=kind.purpose,
                stored_in=[
                    StoredInOut(
                        table=storage.table,
                        columns=list(storage.columns) if storage.table else [],
                        where=storage.describe(),
                    )
                    for storage in kind.stored
                ],
                retention=kind.retention,
                readers=list(kind.readers),
                exported_in=[
                    ExportedInOut(audience=place.audience, section=place.section)
                    for place in kind.exported
                ],
                sold=False,
            )
            for kind in data_register.REGISTER
        ],
        not_personal=[
            NotPersonalOut(table=entry.table, columns=list(entry.columns), why=entry.why)
            for entry in data_register.NOT_PERSONAL
        ],
    )


# --- the personal-data exports: the caller's own, and only theirs ----------------------------


async def driver_export(
    *,
    app: FastAPI,
    driver: Driver,
    session: AsyncSession,
    policy_source: PolicySource,
    key: bytes,
    now: datetime,
) -> DriverExportOut:
    """Everything kept about the driver, with the sections other packages registered."""
    document = await export.driver_export(
        app=app, session=session, policy_source=policy_source, driver=driver, key=key, now=now
    )
    return DriverExportOut.model_validate(document)


async def rider_export(
    *, app: FastAPI, rider: Rider, session: AsyncSession, now: datetime
) -> RiderExportOut:
    """Everything kept about the rider, with the sections other packages registered."""
    document = await export.rider_export(app=app, session=session, rider=rider, now=now)
    return RiderExportOut.model_validate(document)
