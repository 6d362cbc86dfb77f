"""The public ratings report: aggregates only, computed by the database over every rating.

The exclusion rules here are `reputation.score`'s, written as SQL so the report scales with the
co-op; a test holds the two to the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import (
    ARRAY,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from reputation.models import Appeal, AppealOutcome, AppealStatus, Rating, SupportCase
from reputation.policy import STARS_MAX, STARS_MIN, ReputationPolicy
from reputation.score import ExcludedReason


@dataclass(frozen=True)
class RatingsReport:
    total: int
    distribution: dict[int, int]
    counted: int
    excluded: dict[ExcludedReason, int]
    appeals_filed: int
    appeals_open: int
    appeals_decided: int
    appeals_by_outcome: dict[AppealOutcome, int]
    appeals_overdue: int
    appeals_decided_late: int
    median_time_to_decision_s: int | None
    p90_time_to_decision_s: int | None
    support_cases_opened: int
    support_cases_open: int


def percent(part: int, whole: int) -> Decimal:
    if whole == 0:
        return Decimal("0.00")
    return (Decimal(part) * 100 / whole).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


async def classification_counts(
    *, session: AsyncSession, policy: ReputationPolicy
) -> dict[ExcludedReason | None, int]:
    """How many ratings count, and how many are excluded for each reason, across all drivers."""
    excluded_tags = cast(literal(sorted(policy.excluded_tags), ARRAY(String)), ARRAY(String(32)))
    early_reason = case(
        (Appeal.outcome == AppealOutcome.rating_removed, ExcludedReason.appeal_upheld.value),
        (
            and_(
                Rating.stars < STARS_MAX,
                func.cardinality(Rating.tags) > 0,
                Rating.tags.contained_by(excluded_tags),
            ),
            ExcludedReason.excluded_tags.value,
        ),
        else_=None,
    ).label("early_reason")
    classified = (
        select(
            Rating.id, Rating.driver_id, Rating.trip_completed_at, Rating.created_at, early_reason
        )
        .outerjoin(Appeal, Appeal.rating_id == Rating.id)
        .subquery()
    )
    rank = (
        func.row_number()
        .over(
            partition_by=(classified.c.driver_id, classified.c.early_reason.is_(None)),
            order_by=(
                classified.c.trip_completed_at.desc(),
                classified.c.created_at.desc(),
                classified.c.id.desc(),
            ),
        )
        .label("rank")
    )
    ranked = select(classified.c.early_reason, rank).subquery()
    reason = case(
        (ranked.c.early_reason.is_not(None), ranked.c.early_reason),
        (ranked.c.rank > policy.window, ExcludedReason.beyond_window.value),
        else_=None,
    ).label("reason")
    rows = await session.execute(select(reason, func.count()).group_by(reason))
    counts: dict[ExcludedReason | None, int] = {None: 0, **dict.fromkeys(ExcludedReason, 0)}
    for name, count in rows:
        counts[ExcludedReason(name) if name is not None else None] = int(count)
    return counts


async def ratings_report(
    *, session: AsyncSession, policy: ReputationPolicy, now: datetime
) -> RatingsReport:
    """Every figure of GET /v1/transparency/ratings."""
    distribution = dict.fromkeys(range(STARS_MIN, STARS_MAX + 1), 0)
    for stars, count in await session.execute(
        select(Rating.stars, func.count()).group_by(Rating.stars)
    ):
        distribution[int(stars)] = int(count)
    counts = await classification_counts(session=session, policy=policy)

    seconds_to_decision = func.extract("epoch", Appeal.decided_at - Appeal.filed_at)
    decided = Appeal.status == AppealStatus.decided
    appeals = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(Appeal.status == AppealStatus.open),
                func.count().filter(decided),
                func.count().filter(Appeal.outcome == AppealOutcome.rating_removed),
                func.count().filter(Appeal.outcome == AppealOutcome.rating_stands),
                func.count().filter(Appeal.status == AppealStatus.open, Appeal.due_by < now),
                func.count().filter(decided, Appeal.decided_at > Appeal.due_by),
                func.percentile_cont(0.5).within_group(seconds_to_decision).filter(decided),
                func.percentile_cont(0.9).within_group(seconds_to_decision).filter(decided),
            )
        )
    ).one()
    support = (
        await session.execute(
            select(func.count(), func.count().filter(SupportCase.closed_at.is_(None)))
        )
    ).one()
    return RatingsReport(
        total=sum(distribution.values()),
        distribution=distribution,
        counted=counts[None],
        excluded={reason: counts[reason] for reason in ExcludedReason},
        appeals_filed=int(appeals[0]),
        appeals_open=int(appeals[1]),
        appeals_decided=int(appeals[2]),
        appeals_by_outcome={
            AppealOutcome.rating_removed: int(appeals[3]),
            AppealOutcome.rating_stands: int(appeals[4]),
        },
        appeals_overdue=int(appeals[5]),
        appeals_decided_late=int(appeals[6]),
        median_time_to_decision_s=round(appeals[7]) if appeals[7] is not None else None,
        p90_time_to_decision_s=round(appeals[8]) if appeals[8] is not None else None,
        support_cases_opened=int(support[0]),
        support_cases_open=int(support[1]),
    )
