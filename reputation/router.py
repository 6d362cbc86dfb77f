"""HTTP routes of reputation: ratings, the explained score, appeals, support, transparency.

Adapters: each route reads its inputs and calls `reputation.application`, which the co-op's
pages call too."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from coop import paging
from coop.auth import Admin
from coop.clock import Now
from coop.dependencies import RedisDep, SessionDep
from drivers.dependencies import CurrentDriver, Reviewer
from reputation import application
from reputation.dependencies import PolicySourceDep, PseudonymKey
from reputation.schemas import (
    AppealFilter,
    AppealIn,
    AppealOut,
    DataRegisterOut,
    DecisionIn,
    DriverExportOut,
    DriverRatingOut,
    RatingIn,
    RatingOut,
    RatingsReportOut,
    ReputationOut,
    RiderExportOut,
    SupportCaseClose,
    SupportCaseOut,
    TagsOut,
)
from riders.dependencies import CurrentRider

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
    return await application.rate_trip(
        rider_id=rider.id,
        trip_id=trip_id,
        stars=body.stars,
        comment=body.comment,
        tags=body.tags,
        session=session,
        policy_source=policy_source,
        now=now,
    )


@router.get("/v1/ratings/tags", response_model=TagsOut)
async def list_tags(session: SessionDep, policy_source: PolicySourceDep, now: Now) -> TagsOut:
    """The tags a rating may carry, and which the agreement in force leaves out of the score."""
    return await application.tags(session=session, policy_source=policy_source, now=now)


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
    page, next_cursor = await application.my_ratings(
        driver=driver,
        session=session,
        policy_source=policy_source,
        key=key,
        now=now,
        limit=limit,
        cursor=cursor,
    )
    paging.set_next(request, response, next_cursor)
    return page


@router.get("/v1/drivers/me/reputation", response_model=ReputationOut)
async def my_reputation(
    driver: CurrentDriver, session: SessionDep, policy_source: PolicySourceDep, now: Now
) -> ReputationOut:
    """The calling driver's score, which ratings count, and how the number was computed."""
    return await application.my_reputation(
        driver=driver, session=session, policy_source=policy_source, now=now
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
    return await application.appeal_rating(
        driver=driver,
        rating_id=rating_id,
        statement=body.statement,
        session=session,
        policy_source=policy_source,
        key=key,
        now=now,
    )


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
    page, next_cursor = await application.list_appeals(
        driver=driver,
        session=session,
        key=key,
        now=now,
        status=status_filter,
        limit=limit,
        cursor=cursor,
    )
    paging.set_next(request, response, next_cursor)
    return page


@router.get("/v1/appeals/{appeal_id}", response_model=AppealOut)
async def read_appeal(
    appeal_id: uuid.UUID, driver: CurrentDriver, session: SessionDep, key: PseudonymKey, now: Now
) -> AppealOut:
    """One appeal, for its appellant or a reviewer."""
    return await application.read_appeal(
        driver=driver, appeal_id=appeal_id, session=session, key=key, now=now
    )


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
    return await application.decide_appeal(
        driver=reviewer,
        appeal_id=appeal_id,
        outcome=body.outcome,
        reason=body.reason,
        session=session,
        redis=redis,
        policy_source=policy_source,
        key=key,
        now=now,
    )


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
    page, next_cursor = await application.list_support_cases(
        session=session, open_only=status_filter == "open", limit=limit, cursor=cursor
    )
    paging.set_next(request, response, next_cursor)
    return page


@router.post("/v1/support-cases/{case_id}/close", response_model=SupportCaseOut)
async def close_support_case(
    case_id: uuid.UUID, body: SupportCaseClose, session: SessionDep, _: Admin, now: Now
) -> SupportCaseOut:
    """Records that a person reached out (admin only)."""
    return await application.close_support_case(
        case_id=case_id, note=body.note, session=session, now=now
    )


@router.get("/v1/transparency/ratings", response_model=RatingsReportOut)
async def ratings_report(
    session: SessionDep, policy_source: PolicySourceDep, now: Now
) -> RatingsReportOut:
    """Aggregate statistics of ratings and appeals; no one's data, only counts."""
    return await application.ratings_report(session=session, policy_source=policy_source, now=now)


@router.get("/v1/transparency/data", response_model=DataRegisterOut)
async def data_register_report() -> DataRegisterOut:
    """The data register: each kind of personal data, where, how long, who reads it; none sold."""
    return application.data_register_report()


@router.get("/v1/drivers/me/export", response_model=DriverExportOut)
async def export_driver(
    request: Request,
    driver: CurrentDriver,
    session: SessionDep,
    policy_source: PolicySourceDep,
    key: PseudonymKey,
    now: Now,
) -> DriverExportOut:
    """Everything kept about the calling driver, as JSON."""
    return await application.driver_export(
        app=request.app,
        driver=driver,
        session=session,
        policy_source=policy_source,
        key=key,
        now=now,
    )


@router.get("/v1/riders/me/export", response_model=RiderExportOut)
async def export_rider(
    request: Request, rider: CurrentRider, session: SessionDep, now: Now
) -> RiderExportOut:
    """Everything kept about the calling rider, as JSON."""
    return await application.rider_export(app=request.app, rider=rider, session=session, now=now)
