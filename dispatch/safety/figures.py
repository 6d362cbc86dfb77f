"""The safety figures /transparency publishes (docs/safety.md): how many alerts and cases, how
they ended, and how fast a person acknowledged them against the agreement's promise. Counts and
times only, never who: no id, no name, no place."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Float, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.safety.models import ALERT_KINDS, SafetyAlert


@dataclass(frozen=True)
class SafetyFigures:
    # By kind, drills apart: an SOS, a ride check, a mismatch cancellation, a driver's flag.
    raised: dict[str, int]
    drills: int
    # By outcome of those resolved: real, false_alarm, drill (an operator may call one a drill).
    outcomes: dict[str, int]
    open_now: int
    # The alerts (SOS and ride checks) a person acknowledged, and how fast.
    acknowledged: int
    median_ack_s: float | None
    within_promise: int  # acknowledged within the `ack_within_s` in force when raised

    @property
    def share_within(self) -> float | None:
        return None if self.acknowledged == 0 else self.within_promise / self.acknowledged


async def safety_figures(session: AsyncSession) -> SafetyFigures:
    real = SafetyAlert.drill.is_(False)
    raised = {
        kind: int(count)
        for kind, count in await session.execute(
            select(SafetyAlert.kind, func.count()).where(real).group_by(SafetyAlert.kind)
        )
    }
    drills = int(await session.scalar(select(func.count()).where(SafetyAlert.drill)) or 0)
    outcomes = {
        str(outcome): int(count)
        for outcome, count in await session.execute(
            select(SafetyAlert.outcome, func.count())
            .where(real, SafetyAlert.outcome.is_not(None))
            .group_by(SafetyAlert.outcome)
        )
    }
    open_now = int(
        await session.scalar(select(func.count()).where(real, SafetyAlert.resolved_at.is_(None)))
        or 0
    )
    ack_s = cast(func.extract("epoch", SafetyAlert.acknowledged_at - SafetyAlert.raised_at), Float)
    row = (
        await session.execute(
            select(
                func.count(),
                func.percentile_cont(0.5).within_group(ack_s),
                func.sum(case((ack_s <= SafetyAlert.ack_within_s, 1), else_=0)),
            ).where(
                real,
                SafetyAlert.kind.in_([k.value for k in ALERT_KINDS]),
                SafetyAlert.acknowledged_at.is_not(None),
            )
        )
    ).one()
    return SafetyFigures(
        raised=raised,
        drills=drills,
        outcomes=outcomes,
        open_now=open_now,
        acknowledged=int(row[0]),
        median_ack_s=None if row[1] is None else float(row[1]),
        within_promise=int(row[2] or 0),
    )
