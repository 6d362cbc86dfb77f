"""HTTP routes of reputation: ratings, the explained score, appeals, support, transparency."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from redis.exceptions import RedisError

from coop import paging, pubsub
from coop.auth import Admin
from coop.clock import Now
from coop.dependencies import RedisDep, SessionDep
from coop.errors import Forbidden
from drivers.dependencies import CurrentDriver, Reviewer
from reputation import data_register, export, service, transparency
from reputation.dependencies import PolicySourceDep, PseudonymKey
from reputation.schemas import (
    AppealDecidedFrame,
    AppealFilter,
    AppealIn,
    AppealOut,
    Computation,
    DecisionIn,
    DriverRatingOut,
    RatingIn,
    RatingOut,
    ReputationOut,
    SupportCaseClose,
    SupportCaseOut,
    TagOut,
    TagsOut,
)
from reputation.score import FORMULA, METHOD, explain
from reputation.tags import TAGS
from reputation.views import appeal_out, rating_for_driver, rating_for_rider
from riders.dependencies import CurrentRider

logger = logging.getLogger("coop.reputation")

router = APIRouter(tags=["reputation"])


@router.post(
    "/v1/trips/{trip_id}/rating", status_code=status.HTTP_201_CREATED, response_model=RatingOut
)
async def rate_trip(
    trip_id: uuid.UUID,
    body: RatingIn,
    rider: CurrentRider,
    session: SessionDep,
    policy_source: PolicySourceDep,
    now: Now,
) -> RatingOut:
    """The trip's rider rates its driver: once, within the agreement's rating window."""
    rating = await service.rate(
        session=session,
        policy_source=policy_source,
        trip_id=trip_id,
        rider_id=rider.id,
        stars=body.stars,
        comment=body.comment,
        tags=body.tags,
        now=now,
    )
    return rating_for_rider(rating)


@router.get("/v1/ratings/tags", response_model=TagsOut)
async def list_tags(session: SessionDep, policy_source: PolicySourceDep, now: Now) -> TagsOut:
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


@router.get("/v1/drivers/me/ratings", response_model=list[DriverRatingOut])
async def my_ratings(
    request: Request,
    response: Response,
    driver: CurrentDriver,
    session: SessionDep,
    policy_source: PolicySourceDep,
    key: PseudonymKey,
    now: Now,
    limit: paging.LimitQuery = paging.DEFAULT_LIMIT,
    cursor: paging.CursorQuery = None,
) -> list[DriverRatingOut]:
    """Every rating about the calling driver, newest trip first, each marked counted or why not;
    paged (docs/protocol.md, "Paging"). With the agreement's reputation.reveal_after_ratings at
    N > 0, a rating shows once N newer ratings of the driver exist (the score counts it either
    way)."""
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
    paging.set_next(request, response, next_cursor)
    return [
        rating_for_driver(rating, reason=result.reasons[rating.id], key=key, now=now)
        for rating in page
    ]


@router.get("/v1/drivers/me/reputation", response_model=ReputationOut)
async def my_reputation(
    driver: CurrentDriver, session: SessionDep, policy_source: PolicySourceDep, now: Now
) -> ReputationOut:
    """The calling driver's score, which ratings count, and how the number was computed."""
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


@router.post(
    "/v1/ratings/{rating_id}/appeal", status_code=status.HTTP_201_CREATED, response_model=AppealOut
)
async def appeal_rating(
    rating_id: uuid.UUID,
    body: AppealIn,
    driver: CurrentDriver,
    session: SessionDep,
    policy_source: PolicySourceDep,
    key: PseudonymKey,
    now: Now,
) -> AppealOut:
    """The rated driver appeals a rating to a person: once, within the appeal window."""
    appeal = await service.file_appeal(
        session=session,
        policy_source=policy_source,
        rating_id=rating_id,
        driver_id=driver.id,
        statement=body.statement,
        now=now,
    )
    return appeal_out(appeal, key=key, now=now)


@router.get("/v1/appeals", response_model=list[AppealOut])
async def list_appeals(
    request: Request,
    response: Response,
    driver: CurrentDriver,
    session: SessionDep,
    key: PseudonymKey,
    now: Now,
    status_filter: Annotated[AppealFilter | None, Query(alias="status")] = None,
    limit: paging.LimitQuery = paging.DEFAULT_LIMIT,
    cursor: paging.CursorQuery = None,
) -> list[AppealOut]:
    """Reviewers see every appeal, other drivers their own; oldest due first; paged."""
    after = (
        None
        if cursor is None
        else paging.decode_cursor(cursor, "appeals", (datetime, datetime, uuid.UUID))
    )
    appeals = await service.list_appeals(
        session=session,
        driver_id=None if driver.reviewer else driver.id,
        status=status_filter,
        now=now,
        limit=limit + 1,
        after=after,
    )
    page, next_cursor = paging.page_of(appeals, limit, service.appeal_key, "appeals")
    paging.set_next(request, response, next_cursor)
    return [appeal_out(appeal, key=key, now=now) for appeal in page]


@router.get("/v1/appeals/{appeal_id}", response_model=AppealOut)
async def read_appeal(
    appeal_id: uuid.UUID, driver: CurrentDriver, session: SessionDep, key: PseudonymKey, now: Now
) -> AppealOut:
    """One appeal, for its appellant or a reviewer."""
    appeal = await service.get_appeal(session=session, appeal_id=appeal_id)
    if appeal.driver_id != driver.id and not driver.reviewer:
        raise Forbidden("Only the appellant and reviewers may read an appeal")
    return appeal_out(appeal, key=key, now=now)


@router.post("/v1/appeals/{appeal_id}/decision", response_model=AppealOut)
async def decide_appeal(
    appeal_id: uuid.UUID,
    body: DecisionIn,
    reviewer: Reviewer,
    session: SessionDep,
    redis: RedisDep,
    policy_source: PolicySourceDep,
    key: PseudonymKey,
    now: Now,
) -> AppealOut:
    """A reviewer who is not the appellant decides; the appellant is told over their socket."""
    appeal = await service.decide_appeal(
        session=session,
        policy_source=policy_source,
        appeal_id=appeal_id,
        reviewer_id=reviewer.id,
        outcome=body.outcome,
        reason=body.reason,
        now=now,
    )
    decided = appeal_out(appeal, key=key, now=now)
    try:
        await pubsub.to_driver(
            redis, appeal.driver_id, AppealDecidedFrame(type="appeal_decided", appeal=decided)
        )
    except (RedisError, OSError):
        # The decision is recorded; the appellant still sees it in GET /v1/appeals.
        logger.warning("could not push an appeal decision", exc_info=True)
    return decided


@router.get("/v1/support-cases", response_model=list[SupportCaseOut])
async def list_support_cases(
    request: Request,
    response: Response,
    session: SessionDep,
    _: Admin,
    status_filter: Annotated[Literal["open", "all"] | None, Query(alias="status")] = None,
    limit: paging.LimitQuery = paging.DEFAULT_LIMIT,
    cursor: paging.CursorQuery = None,
) -> list[SupportCaseOut]:
    """Support cases for the people who reach out (admin only); `?status=open` for open ones;
    paged."""
    after = (
        None
        if cursor is None
        else paging.decode_cursor(cursor, "support-cases", (datetime, uuid.UUID))
    )
    cases = await service.list_support_cases(
        session=session,
        open_only=status_filter == "open",
        limit=limit + 1,
        after=after,
    )
    page, next_cursor = paging.page_of(cases, limit, service.support_case_key, "support-cases")
    paging.set_next(request, response, next_cursor)
    return [SupportCaseOut.model_validate(case) for case in page]


@router.post("/v1/support-cases/{case_id}/close", response_model=SupportCaseOut)
async def close_support_case(
    case_id: uuid.UUID, body: SupportCaseClose, session: SessionDep, _: Admin, now: Now
) -> SupportCaseOut:
    """Records that a person reached out (admin only)."""
    case = await service.close_support_case(
        session=session, case_id=case_id, note=body.note, now=now
    )
    return SupportCaseOut.model_validate(case)


@router.get("/v1/transparency/ratings")
async def ratings_report(
    session: SessionDep, policy_source: PolicySourceDep, now: Now
) -> dict[str, Any]:
    """Aggregate statistics of ratings and appeals; no one's data, only counts."""
    policy = await policy_source(session, now)
    report = await transparency.ratings_report(session=session, policy=policy, now=now)
    return {
        "generated_at": now.isoformat(),
        "agreement_version": policy.agreement_version,
        "ratings": {
            "total": report.total,
            "distribution": {str(stars): n for stars, n in report.distribution.items()},
            "counted": report.counted,
            "excluded": {
                reason.value: {
                    "count": count,
                    "share_percent": f"{transparency.percent(count, report.total)}",
                }
                for reason, count in report.excluded.items()
            },
        },
        "appeals": {
            "filed": report.appeals_filed,
            "open": report.appeals_open,
            "decided": report.appeals_decided,
            "by_outcome": {outcome.value: n for outcome, n in report.appeals_by_outcome.items()},
            "overdue": report.appeals_overdue,
            "decided_after_due": report.appeals_decided_late,
            "median_time_to_decision_s": report.median_time_to_decision_s,
            "p90_time_to_decision_s": report.p90_time_to_decision_s,
        },
        "support_cases": {"opened": report.support_cases_opened, "open": report.support_cases_open},
        "terms": service.policy_summary(policy),
    }


@router.get("/v1/transparency/data")
async def data_register_report() -> dict[str, Any]:
    """The data register: each kind of personal data, where, how long, who reads it; none sold."""
    return {
        "sold": False,
        "statement": data_register.NONE_SOLD,
        "readers_note": data_register.READERS_NOTE,
        "kinds": [
            {
                "kind": kind.key,
                "description": kind.description,
                "purpose": kind.purpose,
                "stored_in": [
                    {
                        "table": storage.table,
                        "columns": list(storage.columns) if storage.table else [],
                        "where": storage.describe(),
                    }
                    for storage in kind.stored
                ],
                "retention": kind.retention,
                "readers": list(kind.readers),
                "exported_in": [
                    {"audience": place.audience, "section": place.section}
                    for place in kind.exported
                ],
                "sold": False,
            }
            for kind in data_register.REGISTER
        ],
        "not_personal": [
            {"table": entry.table, "columns": list(entry.columns), "why": entry.why}
            for entry in data_register.NOT_PERSONAL
        ],
    }


@router.get("/v1/drivers/me/export")
async def export_driver(
    request: Request,
    driver: CurrentDriver,
    session: SessionDep,
    policy_source: PolicySourceDep,
    key: PseudonymKey,
    now: Now,
) -> dict[str, Any]:
    """Everything kept about the calling driver, as JSON."""
    return await export.driver_export(
        app=request.app,
        session=session,
        policy_source=policy_source,
        driver=driver,
        key=key,
        now=now,
    )


@router.get("/v1/riders/me/export")
async def export_rider(
    request: Request, rider: CurrentRider, session: SessionDep, now: Now
) -> dict[str, Any]:
    """Everything kept about the calling rider, as JSON."""
    return await export.rider_export(app=request.app, session=session, rider=rider, now=now)
