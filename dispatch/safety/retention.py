"""How long alerts and cases are kept (the data register, "safety_alerts"): a real incident two
years after it was resolved, since the person or the police may need it; a false alarm or a
drill 90 days after. Their positions and notes go with them. Open ones are never removed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.safety.models import Outcome, SafetyAlert

KEEP_REAL = timedelta(days=730)
KEEP_OTHER = timedelta(days=90)
PURGE_INTERVAL_S = 3600.0


async def purge(session: AsyncSession, *, now: datetime) -> int:
    """Removes the resolved rows past their time; answers how many. The caller commits."""
    result = await session.execute(
        delete(SafetyAlert).where(
            SafetyAlert.resolved_at.is_not(None),
            or_(
                and_(
                    SafetyAlert.outcome == Outcome.real.value,
                    SafetyAlert.resolved_at < now - KEEP_REAL,
                ),
                and_(
                    SafetyAlert.outcome != Outcome.real.value,
                    SafetyAlert.resolved_at < now - KEEP_OTHER,
                ),
            ),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
