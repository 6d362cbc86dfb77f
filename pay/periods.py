"""Pay periods on the calendar: pure, no I/O and no clock.

A period is `period_days` (7 or 14) local days starting on a Monday at 00:00 in the agreement's
time zone. Fourteen-day periods need an anchor to say which Mondays start one: the Monday
2024-01-01 (`ANCHOR`), so a period starts on every Monday a whole number of periods from it. The
instants come from the zone's rules, so a period holding a daylight-saving change is an hour
longer or shorter than the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bargaining.terms import PAY_PERIOD_ANCHOR

ANCHOR = PAY_PERIOD_ANCHOR  # a Monday; the agreement's (a dividend's period is counted from it)


@dataclass(frozen=True)
class Grid:
    """The calendar of pay periods an agreement sets."""

    period_days: int
    timezone: str

    def __post_init__(self) -> None:
        if self.period_days not in (7, 14):
            raise ValueError("a pay period is 7 or 14 days")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_start(self, day: date) -> bool:
        """Whether a period of this grid starts on local date `day`."""
        return (day - ANCHOR).days % self.period_days == 0

    def start_on_or_before(self, day: date) -> date:
        return day - timedelta(days=(day - ANCHOR).days % self.period_days)

    def start_after(self, day: date) -> date:
        """The first period start strictly after local date `day`."""
        return self.start_on_or_before(day) + timedelta(days=self.period_days)

    def local_date(self, at: datetime) -> date:
        if at.tzinfo is None:
            raise ValueError("needs a timezone-aware time")
        return at.astimezone(self.zone).date()

    def midnight(self, day: date) -> datetime:
        """Local 00:00 of `day` as a UTC instant."""
        return datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)

    def period_of(self, at: datetime) -> tuple[date, datetime, datetime]:
        """(local start date, start instant, end instant) of the period holding `at`."""
        start = self.start_on_or_before(self.local_date(at))
        end = start + timedelta(days=self.period_days)
        return start, self.midnight(start), self.midnight(end)
